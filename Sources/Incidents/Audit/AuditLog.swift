import Crypto
import Foundation

/// The append-only, tamper-evident audit log.
///
/// Each entry stores the canonical JSON of its record (sorted keys, no insignificant space, no
/// escaped slashes) and `hash = SHA-256(previous_hash ‖ "\n" ‖ sequence ‖ "\n" ‖ canonical JSON)`,
/// hex-encoded; the first entry's previous hash is 64 zeros. Changing, removing or reordering
/// any entry breaks the chain from there on, and `verify` names the first broken entry.
/// SQLite triggers refuse updates and deletes; someone with the file can drop them, which is
/// exactly what the chain is there to reveal.
public enum AuditLog {
    public static let genesisHash = String(repeating: "0", count: 64)

    /// The canonical encoding of a record, the bytes that are hashed.
    public static func canonical(_ record: AuditRecord) throws -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(record), as: UTF8.self)
    }

    public static func hash(previous: String, sequence: Int64, canonical: String) -> String {
        let digest = SHA256.hash(data: Data("\(previous)\n\(sequence)\n\(canonical)".utf8))
        return digest.map { String(format: "%02x", $0) }.joined()
    }

    /// Appends `record` in the caller's transaction, chained to the last entry.
    static func append(_ record: AuditRecord, in db: SQLiteConnection) throws {
        let last = try db.query("SELECT sequence, hash FROM audit_log ORDER BY sequence DESC LIMIT 1").first
        let sequence = (last?.integer(0) ?? 0) + 1
        let previous = last?.text(1) ?? genesisHash
        let entry = try canonical(record)
        try db.query(
            "INSERT INTO audit_log (sequence, at, action, agency, incident_id, entry, previous_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [.integer(sequence), .text(record.at), .text(record.action), record.agency.map(SQLValue.text) ?? .null,
             record.incident.map(SQLValue.integer) ?? .null, .text(entry), .text(previous),
             .text(hash(previous: previous, sequence: sequence, canonical: entry))])
    }

    static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }
}

/// The audit log of a database, for the auditor's commands.
public struct AuditStore: Sendable {
    public let database: Database

    public init(database: Database) {
        self.database = database
    }

    /// What `verify` found: the number of entries checked, and the first broken one.
    public struct Verification: Sendable, Equatable, Codable {
        public var entries: Int64
        public var firstBroken: Int64?
        public var problem: String?
        public var intact: Bool { firstBroken == nil }
    }

    /// Checks the whole chain: contiguous sequence numbers, each previous hash equal to the
    /// hash before it, each hash recomputed, and the query columns equal to the hashed record.
    public func verify() async throws -> Verification {
        try await database.read { db in
            var expectedSequence: Int64 = 1
            var previous = AuditLog.genesisHash
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            for row in try db.query("SELECT sequence, at, action, agency, incident_id, entry, previous_hash, hash FROM audit_log ORDER BY sequence") {
                let sequence = row.integer(0) ?? -1
                func broken(_ problem: String) -> Verification {
                    Verification(entries: expectedSequence - 1, firstBroken: sequence == expectedSequence ? sequence : expectedSequence, problem: problem)
                }
                guard sequence == expectedSequence else {
                    return broken("entry \(expectedSequence) is missing (the next is \(sequence))")
                }
                guard row.text(6) == previous else { return broken("its previous hash does not match entry \(sequence - 1)") }
                let entry = row.text(5) ?? ""
                let computed = AuditLog.hash(previous: previous, sequence: sequence, canonical: entry)
                guard row.text(7) == computed else { return broken("its hash does not match its content") }
                guard let record = try? decoder.decode(AuditRecord.self, from: Data(entry.utf8)),
                      record.at == row.text(1), record.action == row.text(2), record.agency == row.text(3), record.incident == row.integer(4)
                else { return broken("its columns differ from the hashed record") }
                previous = computed
                expectedSequence += 1
            }
            return Verification(entries: expectedSequence - 1, firstBroken: nil, problem: nil)
        }
    }

    /// The entries whose time is in `from...to` (ISO 8601 text, inclusive), in order: those
    /// after sequence number `after`, at most `limit` of them (all when nil).
    public func entries(from: String?, to: String?, after: Int64 = 0, limit: Int? = nil) async throws -> [AuditEntry] {
        try await database.read { db in
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            return try db.query(
                "SELECT sequence, entry, previous_hash, hash FROM audit_log WHERE at >= ? AND at <= ? AND sequence > ? ORDER BY sequence LIMIT ?",
                [.text(from ?? ""), .text(to ?? "9999"), .integer(after), .integer(Int64(limit ?? -1))]
            ).map { row in
                AuditEntry(
                    sequence: row.integer(0)!, record: try decoder.decode(AuditRecord.self, from: Data(row.text(1)!.utf8)),
                    previousHash: row.text(2)!, hash: row.text(3)!)
            }
        }
    }

    /// The sequence number of the last entry (0 for an empty log).
    public func lastSequence() async throws -> Int64 {
        try await database.read { db in try db.query("SELECT COALESCE(MAX(sequence), 0) FROM audit_log").first?.integer(0) ?? 0 }
    }

    /// Appends one record in its own transaction (for events outside an incident change, such as authentication).
    public func append(_ record: AuditRecord) async throws {
        try await database.run { db in try db.transaction { try AuditLog.append(record, in: db) } }
    }
}
