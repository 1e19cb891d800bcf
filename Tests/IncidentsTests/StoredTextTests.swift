import Foundation
import Testing
@testable import Incidents

/// Text reaches SQLite by its byte count, so a NUL or any other character is stored whole,
/// never cut where C would stop reading.
@Suite("Stored text")
struct StoredTextTests {
    @Test func textWithNULsAndAnyScriptIsStoredWhole() async throws {
        try await withTemporaryDatabaseFile("text") { path in
            let connection = try SQLiteConnection(path: path)
            try connection.execute("CREATE TABLE notes (text TEXT NOT NULL)")
            let texts = ["\0\0\0\0\0", "before\0after", "Brand 🔥 Zuid — 2ᵉ alarme", "", "שלום\u{200F}"]
            for text in texts {
                _ = try connection.query("INSERT INTO notes (text) VALUES (?)", [.text(text)])
            }
            let stored = try connection.query("SELECT text, length(CAST(text AS BLOB)) FROM notes ORDER BY rowid")
            #expect(stored.map { $0.text(0) } == texts)
            #expect(stored.map { $0.integer(1) } == texts.map { Int64($0.utf8.count) })
        }
    }
}

/// Rows are read by column name; what a row written by hand or by another version holds
/// where a value is required is an error with the column's name, never a crash.
@Suite("Rows by name")
struct RowsByNameTests {
    @Test func aMissingColumnOrAnUnexpectedNULLIsAnError() async throws {
        try await withTemporaryDatabaseFile("rows") { path in
            let connection = try SQLiteConnection(path: path)
            let row = try #require(try connection.query("SELECT 'stib' AS owner, NULL AS heading, 3 AS count, 2.5 AS range").first)
            #expect(try row.text("owner") == "stib")
            #expect(try row.optionalReal("heading") == nil)
            #expect(try row.integer("count") == 3 && row.real("count") == 3, "an integer is read as a real too")
            #expect(try row.real("range") == 2.5)
            #expect(throws: SQLiteError.self) { try row.real("heading") }
            #expect(throws: SQLiteError.self) { try row.text("kind") }
            #expect(throws: SQLiteError.self) { try row.optionalText("count") }
        }
    }
}

/// Statements are prepared once per connection and reused: each use binds afresh, a failed
/// one leaves nothing behind, and more statements than are kept still run.
@Suite("Prepared statements")
struct PreparedStatementsTests {
    @Test func aReusedStatementBindsAfreshAndSurvivesAFailure() async throws {
        try await withTemporaryDatabaseFile("prepared") { path in
            let connection = try SQLiteConnection(path: path)
            try connection.execute("CREATE TABLE cameras (id TEXT PRIMARY KEY, owner TEXT)")
            let insert = "INSERT INTO cameras (id, owner) VALUES (?, ?)"
            try connection.query(insert, [.text("c1"), .text("stib")])
            try connection.query(insert, [.text("c2"), .null])
            var refused: SQLiteError?
            do { try connection.query(insert, [.text("c1"), .text("twice")]) } catch let error as SQLiteError { refused = error }
            #expect(refused?.message.contains("UNIQUE") == true)
            try connection.query(insert, [.text("c3"), .text("pz-5339")])
            let select = "SELECT owner FROM cameras WHERE id = ?"
            #expect(try connection.query(select, [.text("c1")]).first?.text(0) == "stib")
            #expect(try connection.query("SELECT owner IS NULL FROM cameras WHERE id = ?", [.text("c2")]).first?.integer(0) == 1)
            #expect(try connection.query(select, [.text("c3")]).first?.text(0) == "pz-5339")
            // A statement left mid-way would hold its read open: a write transaction still commits.
            try connection.transaction { try connection.query(insert, [.text("c4"), .text("stib")]) }
            // More distinct statements than are kept.
            for index in 0..<300 { #expect(try connection.query("SELECT \(index)").first?.integer(0) == Int64(index)) }
            #expect(try connection.query("SELECT count(*) FROM cameras").first?.integer(0) == 4)
        }
    }
}
