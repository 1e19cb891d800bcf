import ErrorVocabulary
import Foundation

/// The codes of ``CertificateError``: a certificate file that is not there, or that is not a
/// CURVE certificate (damaged, truncated, another kind of file).
public enum CertificateErrorCode: String, ErrorCode {
    case keyMissing = "key_missing"
    case certificateInvalid = "certificate_invalid"
}

/// What can go wrong reading a certificate file.
public enum CertificateError: StableError, Sendable, Equatable, CustomStringConvertible {
    case missing(String)
    case unreadable(String, String)
    case invalidKey(String)
    case noPublicKey(String)

    public var message: String {
        switch self {
        case .missing(let path): "certificate not found: \(path)"
        case .unreadable(let path, let reason): "cannot read certificate \(path): \(reason)"
        case .invalidKey(let field): "\(field) is not a 40-character Z85 CURVE key"
        case .noPublicKey(let path): "no public-key in certificate \(path)"
        }
    }

    public var code: String {
        switch self {
        case .missing: CertificateErrorCode.keyMissing.rawValue
        case .unreadable, .invalidKey, .noPublicKey: CertificateErrorCode.certificateInvalid.rawValue
        }
    }

    public var field: String? { nil }
    /// With its code, as every coded error is written (and printed where it is not caught).
    public var description: String { "\(code): \(message)" }
}

/// ZeroMQ certificate files, in the ZPL format of CZMQ's `zcert` that pyzmq's
/// `zmq.auth.load_certificate` also reads: `NAME.key` holds the public key,
/// `NAME.key_secret` both keys and is readable by its owner only.
public enum CurveCertificate {
    /// Writes `NAME.key` and `NAME.key_secret` into `directory`.
    public static func write(_ keys: CurveKeyPair, name: String, to directory: URL, now: Date = Date()) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let stamp = now.formatted(.iso8601)
        let publicText = """
            #   ****  Generated on \(stamp) by vigil  ****
            #   ZeroMQ CURVE Public Certificate
            #   Exchange securely, or use a secure mechanism to verify the contents
            #   of this file after exchange. Store public certificates in your home
            #   directory, in the .curve subdirectory.

            metadata
                name = "\(name)"
            curve
                public-key = "\(keys.publicKey)"

            """
        try Data(publicText.utf8).write(to: directory.appendingPathComponent("\(name).key"))
        guard let secret = keys.secretKey else { return }
        let secretText = """
            #   ****  Generated on \(stamp) by vigil  ****
            #   ZeroMQ CURVE **Secret** Certificate
            #   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.

            metadata
                name = "\(name)"
            curve
                public-key = "\(keys.publicKey)"
                secret-key = "\(secret)"

            """
        let secretURL = directory.appendingPathComponent("\(name).key_secret")
        // Created empty with owner-only permissions before the secret is written into it.
        _ = FileManager.default.createFile(atPath: secretURL.path, contents: nil, attributes: [.posixPermissions: 0o600])
        try Data(secretText.utf8).write(to: secretURL)
    }

    /// Reads a certificate file (public or secret).
    public static func read(_ url: URL) throws(CertificateError) -> CurveKeyPair {
        guard FileManager.default.fileExists(atPath: url.path) else { throw .missing(url.path) }
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw .unreadable(url.path, error.localizedDescription)
        }
        var publicKey: String?
        var secretKey: String?
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            guard !line.hasPrefix("#"), let equals = line.firstIndex(of: "=") else { continue }
            let name = line[..<equals].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: equals)...].trimmingCharacters(in: CharacterSet(charactersIn: " \t\"'"))
            if name == "public-key" { publicKey = value }
            if name == "secret-key" { secretKey = value }
        }
        guard let publicKey else { throw .noPublicKey(url.path) }
        return try CurveKeyPair(publicKey: publicKey, secretKey: secretKey)
    }
}
