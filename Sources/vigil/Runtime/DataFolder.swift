import Bus
import Foundation

/// The data folder of one Vigil deployment (default `./vigil-data`):
///
///     vigil.sqlite                  the database
///     server.json                   endpoints of the running server (removed when it stops)
///     keys/server.key[_secret]      the server's CURVE certificate
///     keys/agencies/ID.key[_secret] one CURVE certificate per agency
///     keys/users/ID.key[_secret]    the certificates of named users made by `vigil user add`
struct DataFolder {
    let url: URL

    init(path: String) {
        url = URL(fileURLWithPath: path).standardizedFileURL
    }

    var database: URL { url.appendingPathComponent("vigil.sqlite") }
    var serverInfo: URL { url.appendingPathComponent("server.json") }
    var keys: URL { url.appendingPathComponent("keys") }
    var agencyKeys: URL { keys.appendingPathComponent("agencies") }
    var userKeys: URL { keys.appendingPathComponent("users") }

    func serverCertificate(secret: Bool) -> URL { keys.appendingPathComponent(secret ? "server.key_secret" : "server.key") }
    func agencyCertificate(_ agency: String, secret: Bool) -> URL {
        agencyKeys.appendingPathComponent(secret ? "\(agency).key_secret" : "\(agency).key")
    }
    func userCertificate(_ user: String, secret: Bool) -> URL {
        userKeys.appendingPathComponent(secret ? "\(user).key_secret" : "\(user).key")
    }

    func create() throws {
        try FileManager.default.createDirectory(at: agencyKeys, withIntermediateDirectories: true)
    }

    /// The server's key pair, created on first start.
    func serverKeys() throws -> CurveKeyPair {
        let secret = serverCertificate(secret: true)
        if !FileManager.default.fileExists(atPath: secret.path) {
            try CurveCertificate.write(try CurveKeyPair.generate(), name: "server", to: keys)
        }
        return try CurveCertificate.read(secret)
    }

    /// Each agency's public key, creating the key pairs that do not exist yet.
    func agencyPublicKeys(for agencies: [String]) throws -> [String: String] {
        var keys: [String: String] = [:]
        for agency in agencies {
            let secret = agencyCertificate(agency, secret: true)
            if !FileManager.default.fileExists(atPath: secret.path) {
                try CurveCertificate.write(try CurveKeyPair.generate(), name: agency, to: agencyKeys)
            }
            keys[try CurveCertificate.read(agencyCertificate(agency, secret: false)).publicKey] = agency
        }
        return keys
    }
}

/// What a running server publishes in `server.json` and prints as its readiness line.
struct ServerInfo: Codable {
    var ready = true
    var command: String
    var events: String
    var serverKey: String
    var data: String
    var region: String
    /// The Prometheus endpoint.
    var metrics: String?
    /// The embedded relay's media endpoint.
    var media: String?
    /// The embedded relay's HTTP media endpoint (feed links).
    var http: String?
    var cameras: Int
    var pid: Int32
}
