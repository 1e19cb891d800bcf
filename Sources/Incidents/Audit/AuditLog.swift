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
        let sequence = (try last?.integer("sequence") ?? 0) + 1
        let previous = try last?.text("hash") ?? genesisHash
        let entry = try canonical(record)
        try db.query(
            "INSERT INTO audit_log (sequence, at, action, agency, incident_id, entry, previous_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [.integer(sequence), .text(record.at), .text(record.action), record.agency.map(SQLValue.text) ?? .null,
             record.incident.map(SQLValue.integer) ?? .null, .text(entry), .text(previous),
             .text(hash(previous: previous, sequence: sequence, canonical: entry))])
    }

    public static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }
}

/// What audit entries must name to be read (nil: anything).
public struct AuditFilter: Sendable, Equatable {
    public var camera: String?
    public var user: String?
    public var incident: Int64?

    public init(camera: String? = nil, user: String? = nil, incident: Int64? = nil) {
        (self.camera, self.user, self.incident) = (camera, user, incident)
    }
}

/// The audit log of a database, for the auditor's commands.
public struct AuditStore: Sendable {
    public let database: Database

    public init(database: Database) {
        self.database = database
    }

    /// A signal after each write that appended to the log (see ``Database/changes(of:)``).
    public func appended() -> AsyncStream<Void> {
        database.changes(of: "audit_log")
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
                // Whatever a column holds (a tampered row may hold anything) is compared, never an error.
                func text(_ column: String) -> String? { (try? row.optionalText(column)) ?? nil }
                let sequence = ((try? row.optionalInteger("sequence")) ?? nil) ?? -1
                func broken(_ problem: String) -> Verification {
                    Verification(entries: expectedSequence - 1, firstBroken: sequence == expectedSequence ? sequence : expectedSequence, problem: problem)
                }
                guard sequence == expectedSequence else {
                    return broken("entry \(expectedSequence) is missing (the next is \(sequence))")
                }
                guard text("previous_hash") == previous else { return broken("its previous hash does not match entry \(sequence - 1)") }
                let entry = text("entry") ?? ""
                let computed = AuditLog.hash(previous: previous, sequence: sequence, canonical: entry)
                guard text("hash") == computed else { return broken("its hash does not match its content") }
                guard let record = try? decoder.decode(AuditRecord.self, from: Data(entry.utf8)),
                      record.at == text("at"), record.action == text("action"), record.agency == text("agency"),
                      record.incident == (try? row.optionalInteger("incident_id")) ?? nil
                else { return broken("its columns differ from the hashed record") }
                previous = computed
                expectedSequence += 1
            }
            return Verification(entries: expectedSequence - 1, firstBroken: nil, problem: nil)
        }
    }

    /// The entries whose time is in `from...to` (ISO 8601 text, inclusive), in order: those
    /// after sequence number `after`, at most `limit` of them (all when nil).
    public func entries(from: String?, to: String?, after: Int64 = 0, limit: Int? = nil, filter: AuditFilter = AuditFilter()) async throws -> [AuditEntry] {
        try await database.read { db in
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            var conditions = "at >= ? AND at <= ? AND sequence > ?"
            var values: [SQLValue] = [.text(from ?? ""), .text(to ?? "9999"), .integer(after)]
            if let camera = filter.camera {
                conditions += " AND EXISTS (SELECT 1 FROM json_each(entry, '$.cameras') WHERE value = ?)"
                values.append(.text(camera))
            }
            if let user = filter.user {
                conditions += " AND json_extract(entry, '$.user') = ?"
                values.append(.text(user))
            }
            if let incident = filter.incident {
                conditions += " AND incident_id = ?"
                values.append(.integer(incident))
            }
            return try db.query(
                "SELECT sequence, entry, previous_hash, hash FROM audit_log WHERE \(conditions) ORDER BY sequence LIMIT ?", values + [.integer(Int64(limit ?? -1))]
            ).map { row in
                AuditEntry(
                    sequence: try row.integer("sequence"), record: try decoder.decode(AuditRecord.self, from: Data(try row.text("entry").utf8)),
                    previousHash: try row.text("previous_hash"), hash: try row.text("hash"))
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
