import Crypto
import Foundation

/// What an evidence package holds and why it was made, signed by the server (brief requirement
/// 10): the original segments untouched, the viewing copy, the SHA-256 of every file, and who
/// asked for which incident under which grant, hold or legal reference.
public struct EvidenceManifest: Sendable, Codable, Equatable {
    public static let currentFormat = "vigil-evidence/1"

    /// A file of the package, by its path inside it.
    public struct File: Sendable, Codable, Equatable {
        public enum Role: String, Sendable, Codable {
            /// A recorded segment, byte for byte as the relay wrote it.
            case original
            /// Re-encoded with the privacy masks applied and a visible watermark.
            case viewingCopy = "viewing-copy"
        }

        public var path: String
        public var role: Role
        public var bytes: Int
        public var sha256: String

        public init(path: String, role: Role, bytes: Int, sha256: String) {
            (self.path, self.role, self.bytes, self.sha256) = (path, role, bytes, sha256)
        }
    }

    /// A recorded segment's span, for the original file at `path`.
    public struct Segment: Sendable, Codable, Equatable {
        public var path: String
        public var start: Date
        public var end: Date

        public init(path: String, start: Date, end: Date) {
            (self.path, self.start, self.end) = (path, start, end)
        }
    }

    public var format = EvidenceManifest.currentFormat
    public var export: String
    public var createdAt: Date
    /// The server's Ed25519 public key (raw, base64): the key the signature verifies with.
    public var serverKey: String
    public var incident: Int64
    public var camera: String
    public var owner: String
    public var footageFrom: Date
    public var footageTo: Date
    public var agency: String
    public var user: String
    public var reason: String
    public var justification: String
    public var recipient: String?
    public var grant: String
    public var hold: Int64?
    public var legalReference: String?
    public var prosecutorReference: String?
    public var files: [File]
    public var segments: [Segment]

    public init(
        export: String, createdAt: Date, serverKey: String, incident: Int64, camera: String, owner: String, footageFrom: Date, footageTo: Date,
        agency: String, user: String, reason: String, justification: String, recipient: String?, grant: String, hold: Int64?,
        legalReference: String?, prosecutorReference: String?, files: [File], segments: [Segment]
    ) {
        (self.export, self.createdAt, self.serverKey, self.incident, self.camera, self.owner) = (export, createdAt, serverKey, incident, camera, owner)
        (self.footageFrom, self.footageTo, self.agency, self.user, self.reason, self.justification) = (footageFrom, footageTo, agency, user, reason, justification)
        (self.recipient, self.grant, self.hold, self.legalReference, self.prosecutorReference) = (recipient, grant, hold, legalReference, prosecutorReference)
        (self.files, self.segments) = (files, segments)
    }
}

/// Writing and checking evidence packages: a folder with the files, `manifest.json` and
/// `manifest.sig` (the Ed25519 signature of the manifest's exact bytes, base64). Checking needs
/// nothing but the folder and the server's public key.
public enum EvidencePackage {
    public static let manifestName = "manifest.json"
    public static let signatureName = "manifest.sig"

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return encoder
    }()


    /// The SHA-256 of a file, hex, read in 1 MiB pieces.
    public static func sha256(of url: URL) throws -> (hex: String, bytes: Int) {
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        var hash = SHA256()
        var bytes = 0
        while let piece = try handle.read(upToCount: 1 << 20), !piece.isEmpty {
            hash.update(data: piece)
            bytes += piece.count
        }
        return (hash.finalize().map { String(format: "%02x", $0) }.joined(), bytes)
    }

    /// The manifest in `folder` as written, not checked (the server reads its own packages' so), or nil.
    public static func manifest(in folder: URL) -> EvidenceManifest? {
        guard let bytes = try? Data(contentsOf: folder.appendingPathComponent(manifestName)) else { return nil }
        return try? AccessService.decoder.decode(EvidenceManifest.self, from: bytes)
    }

    /// Writes the manifest into `folder` and signs it with `key`; returns the manifest's bytes' SHA-256.
    @discardableResult
    public static func seal(_ manifest: EvidenceManifest, in folder: URL, key: Curve25519.Signing.PrivateKey) throws -> String {
        let bytes = try encoder.encode(manifest)
        try bytes.write(to: folder.appendingPathComponent(manifestName), options: .atomic)
        let signature = try key.signature(for: bytes)
        try Data(signature.base64EncodedString().utf8).write(to: folder.appendingPathComponent(signatureName), options: .atomic)
        return SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    /// Checks a package offline: the signature of its manifest with `publicKey`, then every file
    /// the manifest lists (present, same size, same SHA-256), and that it holds no other file.
    ///
    /// - Throws: ``IncidentError`` `evidence_manifest_invalid`, `evidence_signature_invalid`,
    ///   `evidence_file_missing`, `evidence_file_altered`, `evidence_file_unlisted`.
    public static func verify(_ folder: URL, publicKey: Curve25519.Signing.PublicKey) throws(IncidentError) -> EvidenceManifest {
        let manifestURL = folder.appendingPathComponent(manifestName)
        guard let bytes = try? Data(contentsOf: manifestURL), let signatureText = try? String(contentsOf: folder.appendingPathComponent(signatureName), encoding: .utf8) else {
            throw IncidentError(.evidenceManifestInvalid, message: "\(folder.path) has no \(manifestName) and \(signatureName)", field: "package")
        }
        guard let signature = Data(base64Encoded: signatureText.trimmingCharacters(in: .whitespacesAndNewlines)),
              publicKey.isValidSignature(signature, for: bytes)
        else {
            throw IncidentError(.evidenceSignatureInvalid, message: "the manifest's signature does not verify with this server key", field: signatureName)
        }
        let manifest: EvidenceManifest
        do {
            manifest = try AccessService.decoder.decode(EvidenceManifest.self, from: bytes)
        } catch {
            throw IncidentError(.evidenceManifestInvalid, message: "the signed manifest cannot be read: \(error)", field: manifestName)
        }
        guard manifest.format == EvidenceManifest.currentFormat else {
            throw IncidentError(.evidenceManifestInvalid, message: "format \(manifest.format) is not \(EvidenceManifest.currentFormat)", field: "format")
        }
        for file in manifest.files {
            // A listed path stays inside the package.
            guard !file.path.hasPrefix("/"), !file.path.split(separator: "/").contains("..") else {
                throw IncidentError(.evidenceManifestInvalid, message: "\(file.path) is outside the package", field: "files")
            }
            let url = folder.appendingPathComponent(file.path)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw IncidentError(.evidenceFileMissing, message: "\(file.path) is missing", field: file.path)
            }
            guard let (hex, size) = try? sha256(of: url), hex == file.sha256, size == file.bytes else {
                throw IncidentError(.evidenceFileAltered, message: "\(file.path) is not the file that was exported (its SHA-256 differs)", field: file.path)
            }
        }
        let listed = Set(manifest.files.map(\.path) + [manifestName, signatureName])
        let present = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: [.isRegularFileKey])?.compactMap { item -> String? in
            guard let url = item as? URL, (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true else { return nil }
            return String(url.standardizedFileURL.path.dropFirst(folder.standardizedFileURL.path.count + 1))
        } ?? []
        if let extra = present.sorted().first(where: { !listed.contains($0) }) {
            throw IncidentError(.evidenceFileUnlisted, message: "\(extra) is not in the signed manifest", field: extra)
        }
        return manifest
    }
}
