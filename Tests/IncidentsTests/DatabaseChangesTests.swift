import Foundation
import Testing
@testable import Incidents

/// Code that follows a table is told when a write changed it, instead of polling.
@Suite("Database changes")
struct DatabaseChangesTests {
    static func withDatabase(_ body: (Database) async throws -> Void) async throws {
        try await withTemporaryDatabaseFile("changes") { path in try await body(try Database(path: path)) }
    }

    @Test func theConnectionKnowsWhichTablesAWriteChanged() async throws {
        try await withTemporaryDatabaseFile("hook") { path in
            let connection = try SQLiteConnection(path: path)
            try connection.execute("CREATE TABLE a (x INTEGER); CREATE TABLE b (x INTEGER)")
            #expect(connection.takeChangedTables().isEmpty, "creating tables changes no rows")
            try connection.transaction {
                try connection.query("INSERT INTO a VALUES (1)")
                try connection.query("UPDATE a SET x = 2")
                #expect(connection.inTransaction)
            }
            #expect(!connection.inTransaction)
            #expect(connection.takeChangedTables() == ["a"])
            try connection.query("DELETE FROM b")
            try connection.query("INSERT INTO b VALUES (3)")
            #expect(connection.takeChangedTables() == ["b"])
            #expect(connection.takeChangedTables().isEmpty, "taken once")
        }
    }

    @Test func anAppendToTheAuditLogIsSignalledToItsFollowers() async throws {
        try await Self.withDatabase { database in
            let audit = AuditStore(database: database)
            let appended = audit.appended()
            try await audit.append(AuditRecord(action: "incident.opened", agency: "siamu", incident: 1))
            var signals = appended.makeAsyncIterator()
            #expect(await signals.next() != nil, "the append is signalled")
            // A write that changed several tables tells each table's followers.
            let owners = database.changes(of: "owners")
            try await database.run { db in
                try db.query("INSERT INTO owners (id, name, country, regime, retention_days) VALUES ('o', 'O', 'BE', 'private', 30)")
            }
            var ownerSignals = owners.makeAsyncIterator()
            #expect(await ownerSignals.next() != nil)
        }
    }
}
