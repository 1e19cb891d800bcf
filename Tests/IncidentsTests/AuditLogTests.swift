import Foundation
import Testing
import Crypto
@testable import Incidents

private func withAudit(_ body: (AuditStore, Database) async throws -> Void) async throws {
    try await withTemporaryDatabaseFile("audit") { path in
        let database = try Database(path: path)
        let store = AuditStore(database: database)
        for number in 1...5 {
            try await store.append(AuditRecord(
                action: number % 2 == 0 ? "auth.refused" : "incident.opened", agency: "siamu", cameras: ["cam-\(number)"],
                incident: Int64(number), source: "127.0.0.1"))
        }
        try await body(store, database)
    }
}

@Suite("Audit log")
struct AuditLogTests {
    @Test func aFreshChainVerifiesAndExports() async throws {
        try await withAudit { store, _ in
            #expect(try await store.verify() == AuditStore.Verification(entries: 5, firstBroken: nil, problem: nil))
            let entries = try await store.entries(from: nil, to: nil)
            #expect(entries.map(\.sequence) == [1, 2, 3, 4, 5])
            #expect(entries[0].previousHash == AuditLog.genesisHash)
            #expect(zip(entries, entries.dropFirst()).allSatisfy { $0.hash == $1.previousHash })
            #expect(try await store.entries(from: "9000", to: nil).isEmpty)
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
            let result = try await store.verify()
            #expect(result.firstBroken == expected, "\(result.problem ?? "")")
            #expect(result.entries == expected - 1)
        }
    }

    /// An attacker with the database file and no signing key: a checkpoint kept by an owner
    /// reveals a log cut short and a log rewritten and re-chained (whose own check passes).
    @Test func aKeptCheckpointRevealsTruncationAndRechaining() async throws {
        try await withAudit { store, database in
            let key = Curve25519.Signing.PrivateKey()
            let serverKey = key.publicKey.rawRepresentation.base64EncodedString()
            let kept = try await store.checkpoint(signedWith: key)
            #expect(kept.sequence == 5 && kept.hasValidSignature)
            #expect(try await store.verify(kept, serverKey: serverKey).holds)
            try await store.append(AuditRecord(action: "incident.closed", agency: "siamu"))
            #expect(try await store.verify(kept, serverKey: serverKey) == CheckpointVerification(holds: true, sequence: 5, entries: 6))

            // A checkpoint edited by hand, or signed with another key, proves nothing.
            var edited = kept
            edited.sequence = 4
            #expect(try await store.verify(edited, serverKey: serverKey).code == "signature_invalid")
            let forged = try AuditCheckpoint.sign(sequence: 5, head: kept.head, with: Curve25519.Signing.PrivateKey())
            #expect(try await store.verify(forged, serverKey: serverKey).code == "key_mismatch")

            // Re-chained: entry 3 changed, and every hash from there recomputed.
            try database.runSync { db in
                try db.execute("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;")
                try db.execute("UPDATE audit_log SET entry = replace(entry, 'cam-3', 'cam-9') WHERE sequence = 3")
                var previous = try db.query("SELECT hash FROM audit_log WHERE sequence = 2").first!.text(0)!
                for row in try db.query("SELECT sequence, entry FROM audit_log WHERE sequence >= 3 ORDER BY sequence") {
                    let hash = AuditLog.hash(previous: previous, sequence: row.integer(0)!, canonical: row.text(1)!)
                    try db.query("UPDATE audit_log SET previous_hash = ?, hash = ? WHERE sequence = ?", [.text(previous), .text(hash), .integer(row.integer(0)!)])
                    previous = hash
                }
            }
            #expect(try await store.verify().intact, "the chain alone cannot tell")
            let rewritten = try await store.verify(kept, serverKey: serverKey)
            #expect(!rewritten.holds && rewritten.code == "rewritten", "\(rewritten)")

            // Cut short: the last three entries deleted; what is left is a valid chain.
            try database.runSync { db in try db.execute("DELETE FROM audit_log WHERE sequence >= 4") }
            #expect(try await store.verify().intact)
            let truncated = try await store.verify(kept, serverKey: serverKey)
            #expect(truncated.code == "truncated" && truncated.entries == 3, "\(truncated)")
        }
    }

    @Test func checkpointsAreReadAsKeptOrAsReceived() throws {
        let checkpoint = try AuditCheckpoint.sign(sequence: 3, head: String(repeating: "a", count: 64), with: Curve25519.Signing.PrivateKey())
        let encoder = JSONEncoder()
        let plain = String(decoding: try encoder.encode(checkpoint), as: UTF8.self)
        let event = #"{"channel":"owner/stib","seq":0,"type":"audit.checkpoint","at":"2026-12-02T00:00:00Z","body":"# + plain + "}"
        #expect(try AuditCheckpoint.read(plain) == [checkpoint])
        #expect(try AuditCheckpoint.read(plain + "\n" + event + "\n") == [checkpoint, checkpoint])
        #expect(throws: IncidentError.self) { try AuditCheckpoint.read("{\"sequence\": 3}") }
    }
}
