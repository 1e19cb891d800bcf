import ErrorVocabulary
import Crypto
import Foundation

/// A signed statement of the audit chain's length and head, like a signed tree head of
/// Certificate Transparency (RFC 6962 §3.5, RFC 9162 §4.10): the server signs, at a fixed
/// interval and when it stops, "the log holds `sequence` entries and the last one's hash is
/// `head`" with an Ed25519 key of its own, and publishes the statement to auditors and owners,
/// who keep it. The chain makes every entry up to `sequence` depend on `head`; the signature
/// makes the statement the server's. Whoever keeps a checkpoint can later prove that the log
/// still holds everything it covered: a log cut short (tail truncation) has no entry
/// `sequence`, and a log rewritten and re-chained from some entry on has another hash there.
/// A hash chain needs no Merkle consistency proof: the entries between two checkpoints are it.
public struct AuditCheckpoint: Codable, Sendable, Equatable {
    /// What the signature covers and how; changes with any change of `signedMessage`.
    public static let format = "vigil-audit-checkpoint/v1"

    public var format: String
    /// The server's Ed25519 public key (32 bytes, base64).
    public var key: String
    /// The number of entries covered: entries 1 to `sequence`.
    public var sequence: Int64
    /// The hash of entry `sequence` (64 zeros for an empty log).
    public var head: String
    /// When the server signed, ISO 8601 UTC.
    public var at: String
    /// Ed25519 over ``signedMessage``, base64.
    public var signature: String

    /// The bytes signed: one field per line, in this order, each line ending with a newline.
    public var signedMessage: Data {
        Data("\(format)\n\(key)\n\(sequence)\n\(head)\n\(at)\n".utf8)
    }

    /// Signs the statement that the log holds `sequence` entries ending in `head`.
    public static func sign(sequence: Int64, head: String, at date: Date = Date(), with key: Curve25519.Signing.PrivateKey) throws -> AuditCheckpoint {
        var checkpoint = AuditCheckpoint(
            format: format, key: key.publicKey.rawRepresentation.base64EncodedString(), sequence: sequence, head: head,
            at: AuditLog.timestamp(date), signature: "")
        checkpoint.signature = try key.signature(for: checkpoint.signedMessage).base64EncodedString()
        return checkpoint
    }

    /// Whether the signature is the key's, over this statement.
    public var hasValidSignature: Bool {
        guard format == Self.format, let keyBytes = Data(base64Encoded: key), let signatureBytes = Data(base64Encoded: signature),
              let publicKey = try? Curve25519.Signing.PublicKey(rawRepresentation: keyBytes)
        else { return false }
        return publicKey.isValidSignature(signatureBytes, for: signedMessage)
    }
}

/// What checking a log against a checkpoint found. `holds` is true when the log still holds
/// every entry the checkpoint covers, unchanged; else `code` says how it does not:
/// `signature_invalid`, `key_mismatch` (signed by another key than the server's),
/// `chain_broken` (the chain itself is broken at or before the checkpoint), `truncated` (the log
/// ends before the checkpoint's last entry), `rewritten` (the entry is there with another hash).
public struct CheckpointVerification: Sendable, Equatable, Codable {
    /// How a log fails a checkpoint. Each is explained in `docs/protocol.md`.
    public enum Code: String, ErrorCode {
        case chainBroken = "chain_broken"
        case keyMismatch = "key_mismatch"
        case rewritten
        case signatureInvalid = "signature_invalid"
        case truncated
    }

    public var holds: Bool
    /// One of ``Code``, as written (a reply read over the bus may carry a newer server's).
    public var code: String?
    public var problem: String?
    /// The entries the checkpoint covers, and the log's length now.
    public var sequence: Int64
    public var entries: Int64
}

extension AuditStore {
    /// Signs a checkpoint of the log as it stands and keeps a copy in the database.
    public func checkpoint(signedWith key: Curve25519.Signing.PrivateKey, at date: Date = Date()) async throws -> AuditCheckpoint {
        let keyBytes = key.rawRepresentation
        return try await database.run { db in
            let key = try Curve25519.Signing.PrivateKey(rawRepresentation: keyBytes)
            let last = try db.query("SELECT sequence, hash FROM audit_log ORDER BY sequence DESC LIMIT 1").first
            let checkpoint = try AuditCheckpoint.sign(sequence: try last?.integer("sequence") ?? 0, head: try last?.text("hash") ?? AuditLog.genesisHash, at: date, with: key)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            try db.query(
                "INSERT INTO audit_checkpoints (sequence, at, checkpoint) VALUES (?, ?, ?)",
                [.integer(checkpoint.sequence), .text(checkpoint.at), .text(String(decoding: try encoder.encode(checkpoint), as: UTF8.self))])
            return checkpoint
        }
    }

    /// The sequence of the newest checkpoint signed (0 when none).
    public func lastCheckpointSequence() async throws -> Int64 {
        try await database.read { db in try db.query("SELECT COALESCE(MAX(sequence), 0) FROM audit_checkpoints").first?.integer(0) ?? 0 }
    }

    /// Checks that the log still holds everything `checkpoint` covers.
    ///
    /// - Parameter serverKey: the key the server signs with now (base64); a checkpoint signed
    ///   with another is refused (`key_mismatch`), since anyone can sign a statement with a key of
    ///   their own.
    public func verify(_ checkpoint: AuditCheckpoint, serverKey: String) async throws -> CheckpointVerification {
        let chain = try await verify()
        let entries = try await lastSequence()
        func fails(_ code: CheckpointVerification.Code, _ problem: String) -> CheckpointVerification {
            CheckpointVerification(holds: false, code: code.rawValue, problem: problem, sequence: checkpoint.sequence, entries: entries)
        }
        guard checkpoint.hasValidSignature else { return fails(.signatureInvalid, "the checkpoint's signature does not verify") }
        guard checkpoint.key == serverKey else {
            return fails(.keyMismatch, "the checkpoint was signed with \(checkpoint.key), not this server's key \(serverKey)")
        }
        if let broken = chain.firstBroken, broken <= max(checkpoint.sequence, 1) {
            return fails(.chainBroken, "entry \(broken) is broken: \(chain.problem ?? "?")")
        }
        guard entries >= checkpoint.sequence else {
            return fails(.truncated, "the log ends at entry \(entries); the checkpoint of \(checkpoint.at) covers \(checkpoint.sequence) entries")
        }
        let head = checkpoint.sequence == 0
            ? AuditLog.genesisHash
            : try await database.read { db in
                try db.query("SELECT hash FROM audit_log WHERE sequence = ?", [.integer(checkpoint.sequence)]).first?.text(0) ?? ""
            }
        guard head == checkpoint.head else {
            return fails(.rewritten, "entry \(checkpoint.sequence) has hash \(head), not the \(checkpoint.head) signed at \(checkpoint.at)")
        }
        return CheckpointVerification(holds: true, code: nil, problem: nil, sequence: checkpoint.sequence, entries: entries)
    }
}

extension AuditCheckpoint {
    /// The checkpoints in a file an auditor or owner kept: one JSON object, or one per line,
    /// each a checkpoint or the `audit.checkpoint` event that carried it.
    public static func read(_ text: String) throws -> [AuditCheckpoint] {
        let decoder = JSONDecoder()
        let whole = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let lines = whole.hasPrefix("{") && (try? JSONSerialization.jsonObject(with: Data(whole.utf8))) != nil
            ? [whole] : whole.split(separator: "\n").map(String.init)
        return try lines.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.enumerated().map { number, line in
            struct Event: Decodable { var body: AuditCheckpoint }
            let data = Data(line.utf8)
            if let checkpoint = try? decoder.decode(AuditCheckpoint.self, from: data) { return checkpoint }
            if let event = try? decoder.decode(Event.self, from: data) { return event.body }
            throw IncidentError(.checkpointInvalid, message: "checkpoint \(number + 1) is neither a checkpoint nor an audit.checkpoint event", field: "checkpoint")
        }
    }
}
