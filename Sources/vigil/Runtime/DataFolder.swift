import Bus
import Crypto
import Foundation
import Incidents

/// The data folder of one Vigil deployment (default `./vigil-data`):
///
///     vigil.sqlite                  the database
///     server.json                   endpoints of the running server (removed when it stops)
///     serve.lock                    held (flock) by the one server that uses the folder
///     region                        the region the folder serves (`brussels`), written on first start
///     keys/server.key[_secret]      the server's CURVE certificate
///     keys/audit.ed25519[_secret]   the key the server signs audit checkpoints with (base64)
///     keys/agencies/ID.key[_secret] one CURVE certificate per agency
///     keys/users/ID.key[_secret]    the certificates of named users made by `vigil user add`
struct DataFolder {
    let url: URL

    init(path: String) {
        url = URL(fileURLWithPath: path).standardizedFileURL
    }

    var database: URL { url.appendingPathComponent("vigil.sqlite") }

    /// The folder's database, opened and brought to this Vigil's schema. A file SQLite cannot
    /// use (not a database, damaged, unreadable, of a newer Vigil) is refused with
    /// `database_unusable`, saying what to do, instead of SQLite's bare message.
    func openDatabase() throws -> Database {
        do {
            return try Database(path: database.path)
        } catch let error as SQLiteError {
            throw CommandFailure(.databaseUnusable, message: "\(database.path) cannot be used as Vigil's database: \(error.message). "
                + "Nothing was changed; put back a copy of the folder's database, or move the file away to start an empty one")
        }
    }
    var serverInfo: URL { url.appendingPathComponent("server.json") }
    /// Recorded segments, one folder per camera (`vigil serve` writes them).
    var footage: URL { url.appendingPathComponent("footage") }
    /// Evidence packages (`vigil export`).
    var exports: URL { url.appendingPathComponent("exports") }
    var keys: URL { url.appendingPathComponent("keys") }
    /// The Ed25519 key that signs audit checkpoints (its public half beside it, `audit.ed25519`).
    var auditSigningKeyFile: URL { keys.appendingPathComponent("audit.ed25519_secret") }
    /// A cluster coordinator's Raft log (`vigil serve --cluster`).
    var raft: URL { url.appendingPathComponent("raft") }
    var agencyKeys: URL { keys.appendingPathComponent("agencies") }
    var userKeys: URL { keys.appendingPathComponent("users") }

    func serverCertificate(secret: Bool) -> URL { keys.appendingPathComponent(secret ? "server.key_secret" : "server.key") }
    func agencyCertificate(_ agency: String, secret: Bool) -> URL {
        agencyKeys.appendingPathComponent(secret ? "\(agency).key_secret" : "\(agency).key")
    }
    func userCertificate(_ user: String, secret: Bool) -> URL {
        userKeys.appendingPathComponent(secret ? "\(user).key_secret" : "\(user).key")
    }

    var lockFile: URL { url.appendingPathComponent("serve.lock") }
    var regionFile: URL { url.appendingPathComponent("region") }

    /// The region the folder was first served for, if it records one.
    func recordedRegion() throws -> Deployment? {
        guard let text = try? String(contentsOf: regionFile, encoding: .utf8) else { return nil }
        let name = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let region = Deployment(rawValue: name) else {
            throw CommandFailure(.dataFolderInvalid, message: "\(regionFile.path) names no region Vigil knows: '\(name)'")
        }
        return region
    }

    /// Records `region` on first start; later starts must name the same region (its cameras
    /// were checked against its CRS).
    func record(region: Deployment) throws {
        if let recorded = try recordedRegion() {
            guard recorded == region else {
                throw CommandFailure(.regionMismatch, message: "\(url.path) serves \(recorded.rawValue), not \(region.rawValue)")
            }
            return
        }
        try Data("\(region.rawValue)\n".utf8).write(to: regionFile, options: .atomic)
    }

    /// Creates the folder; a path that exists and is not a folder is an error.
    func create() throws {
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder), !isFolder.boolValue {
            throw CommandFailure(.dataFolderInvalid, message: "\(url.path) exists and is not a folder")
        }
        try FileManager.default.createDirectory(at: agencyKeys, withIntermediateDirectories: true)
    }

    /// Takes the folder for this process: an advisory lock (`flock`) on `serve.lock`, held until
    /// the process ends (the kernel releases it even after a crash, so there is nothing stale to
    /// clean up). A second server on the same folder gets `data_folder_in_use` and touches nothing.
    func lockForServer() throws -> DataFolderLock {
        let descriptor = open(lockFile.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw CommandFailure(.dataFolderInvalid, message: "cannot open \(lockFile.path): \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOf: lockFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            close(descriptor)
            throw CommandFailure(
                .dataFolderInUse,
                message: "another vigil serve\(holder.isEmpty ? "" : " (pid \(holder))") uses \(url.path); stop it first or use another --data")
        }
        // The holder's pid, for the message above; informative only, the lock is the flock.
        let pid = Data("\(getpid())\n".utf8)
        _ = ftruncate(descriptor, 0)
        _ = pid.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        return DataFolderLock(descriptor: descriptor)
    }

    /// The running server's description (its server.json).
    func runningServer() throws -> ServerInfo {
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder), !isFolder.boolValue {
            throw CommandFailure(.dataFolderInvalid, message: "--data \(url.path) is a file, not a data folder")
        }
        guard let infoData = try? Data(contentsOf: serverInfo) else {
            throw CommandFailure(.serverNotRunning, message: "no \(serverInfo.path); start the server with `vigil serve --data \(url.path)`")
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        guard let info = try? decoder.decode(ServerInfo.self, from: infoData) else {
            throw CommandFailure(.serverInfoInvalid, message: "\(serverInfo.path) is not a Vigil server description")
        }
        return info
    }

    /// Every coordinator of a cluster presents the same server key and signs checkpoints with the
    /// same audit key: members other than the first start from a copy of member 1's keys.
    func requireSharedKeys(member: Int) throws {
        let needed = [serverCertificate(secret: true), auditSigningKeyFile]
        guard needed.allSatisfy({ FileManager.default.fileExists(atPath: $0.path) }) else {
            throw CommandFailure(
                .clusterKeysMissing,
                message: "member \(member) has no keys in \(keys.path): copy member 1's DATA/keys folder here (after member 1's first start), so that every coordinator presents the same server key")
        }
    }

    /// The server's key pair, created on first start.
    func serverKeys() throws -> CurveKeyPair {
        let secret = serverCertificate(secret: true)
        if !FileManager.default.fileExists(atPath: secret.path) {
            try CurveCertificate.write(try CurveKeyPair.generate(), name: "server", to: keys)
        }
        return try CurveCertificate.read(secret)
    }

    /// The Ed25519 key that signs audit checkpoints, created on first start (secret readable by
    /// the server's user only; the public half beside it, for auditors and owners).
    func auditSigningKey() throws -> Curve25519.Signing.PrivateKey {
        let secret = auditSigningKeyFile
        if let text = try? String(contentsOf: secret, encoding: .utf8) {
            guard let raw = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)),
                  let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw)
            else { throw CommandFailure(.dataFolderInvalid, message: "\(secret.path) is not an Ed25519 key in base64") }
            return key
        }
        let key = Curve25519.Signing.PrivateKey()
        try FileManager.default.createDirectory(at: keys, withIntermediateDirectories: true)
        guard FileManager.default.createFile(
            atPath: secret.path, contents: Data((key.rawRepresentation.base64EncodedString() + "\n").utf8), attributes: [.posixPermissions: 0o600])
        else { throw CommandFailure(.dataFolderInvalid, message: "cannot write \(secret.path)") }
        try Data((key.publicKey.rawRepresentation.base64EncodedString() + "\n").utf8).write(to: keys.appendingPathComponent("audit.ed25519"))
        return key
    }

    /// The public half of the audit signing key, if the folder has one (read, never created).
    func auditPublicKey() throws -> String {
        let file = keys.appendingPathComponent("audit.ed25519")
        guard let text = try? String(contentsOf: file, encoding: .utf8) else {
            throw CommandFailure(.keyMissing, message: "\(file.path) is missing; a server signs checkpoints once it has started")
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
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

/// The lock a server holds on its data folder; released when the process ends.
final class DataFolderLock {
    private let descriptor: Int32
    init(descriptor: Int32) { self.descriptor = descriptor }
    deinit { close(descriptor) }
}

/// What a running server publishes in `server.json` and prints as its readiness line.
struct ServerInfo: Codable {
    var ready = true
    var command: String
    var events: String
    var serverKey: String
    /// The Ed25519 public key (base64) that signs the audit checkpoints (absent from the
    /// `server.json` of servers older than the checkpoints).
    var auditKey: String?
    var data: String
    var region: String
    /// The Prometheus endpoint.
    var metrics: String?
    /// The embedded relay's media endpoint.
    var media: String?
    /// The embedded relay's HTTP media endpoint (feed links).
    var http: String?
    /// The operator console (absent with `--console-port -1`).
    var console: String?
    /// The cameras the server serves (absent for a cluster's standby, which serves none until it leads).
    var cameras: Int?
    var pid: Int32
    /// A coordinator of a replicated cluster: its number, its role, and every coordinator's endpoints.
    var cluster: Cluster?

    struct Cluster: Codable {
        var member: Int
        /// `leader` (the active coordinator) or `standby`.
        var role: String
        var coordinators: [BusProtocol.CoordinatorEndpoints]
        /// Every member's Raft address, in member order (`--cluster`).
        var members: [String]
    }
}
