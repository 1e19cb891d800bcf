import Foundation
import Testing
@testable import Incidents

private func withAudit(_ body: (AuditStore, Database) async throws -> Void) async throws {
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-audit-\(UUID().uuidString).sqlite")
    defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: file.path + suffix) } }
    let database = try Database(path: file.path)
    let store = AuditStore(database: database)
    for number in 1...5 {
        try await store.append(AuditRecord(
            action: number % 2 == 0 ? "auth.refused" : "incident.opened", agency: "siamu", cameras: ["cam-\(number)"],
            incident: Int64(number), source: "127.0.0.1"))
    }
    try await body(store, database)
}

@Suite("Audit log")
struct AuditLogTests {
    @Test func aFreshChainVerifiesAndExports() async throws {
        try await withAudit { store, _ in
            #expect(try store.verify() == AuditStore.Verification(entries: 5, firstBroken: nil, problem: nil))
            let entries = try store.entries(from: nil, to: nil)
            #expect(entries.map(\.sequence) == [1, 2, 3, 4, 5])
            #expect(entries[0].previousHash == AuditLog.genesisHash)
            #expect(zip(entries, entries.dropFirst()).allSatisfy { $0.hash == $1.previousHash })
            #expect(try store.entries(from: "9000", to: nil).isEmpty)
        }
    }

    @Test func theCanonicalEncodingIsStable() throws {
        var record = AuditRecord(action: "incident.opened", agency: "siamu", cameras: ["b", "a"], incident: 7)
        record.at = "2026-11-22T10:00:00.000Z"
        let canonical = try AuditLog.canonical(record)
        #expect(canonical == #"{"action":"incident.opened","agency":"siamu","at":"2026-11-22T10:00:00.000Z","cameras":["b","a"],"incident":7}"#)
        // SHA-256 of "<64 zeros>\n1\n<canonical>", computed independently with sha256sum.
        #expect(AuditLog.hash(previous: AuditLog.genesisHash, sequence: 1, canonical: canonical)
            == "70f39d281e180711d059ddc32fa7be8389b08c91153500677ac7a9b261a6307d")
    }

    @Test func theTriggersRefuseChangesAndDeletions() async throws {
        try await withAudit { _, database in
            #expect(throws: SQLiteError.self) { try database.runSync { try $0.execute("UPDATE audit_log SET agency = 'x' WHERE sequence = 2") } }
            #expect(throws: SQLiteError.self) { try database.runSync { try $0.execute("DELETE FROM audit_log WHERE sequence = 2") } }
        }
    }

    @Test(arguments: [
        ("UPDATE audit_log SET entry = replace(entry, 'cam-3', 'cam-9') WHERE sequence = 3", Int64(3)),
        ("UPDATE audit_log SET agency = 'federal-police' WHERE sequence = 2", 2),
        ("DELETE FROM audit_log WHERE sequence = 4", 4),
        // Always a different first character (replacing it with a constant would be no change 1 time in 16).
        ("UPDATE audit_log SET hash = (CASE WHEN substr(hash, 1, 1) = 'a' THEN 'b' ELSE 'a' END) || substr(hash, 2) WHERE sequence = 5", 5),
        ("UPDATE audit_log SET previous_hash = (SELECT hash FROM audit_log WHERE sequence = 1) WHERE sequence = 3", 3),
    ])
    func verifyNamesTheFirstTamperedEntry(_ tampering: String, _ expected: Int64) async throws {
        try await withAudit { store, database in
            try database.runSync { db in
                try db.execute("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;")
                try db.execute(tampering)
            }
            let result = try store.verify()
            #expect(result.firstBroken == expected, "\(result.problem ?? "")")
            #expect(result.entries == expected - 1)
        }
    }
}
