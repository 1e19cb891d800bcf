import Foundation

/// SQL run through a dqlite node: every statement goes to the cluster's leader, and a write
/// commits once a majority of the cluster holds it. A node that is not the leader refuses
/// (``DqliteFailure/notLeader``): the caller's coordinator has lost the lead.
final class ReplicatedStatements: SQLStatements {
    private let client: DqliteClient
    private let database: UInt64
    private(set) var inTransaction = false
    private var changed = Set<String>()

    init(node: String, through transport: any ReplicationTransport, name: String, timeout: Duration) throws(SQLiteError) {
        client = try DqliteClient(address: node, through: transport, timeout: timeout)
        database = try client.open(name)
    }

    func execute(_ sql: String) throws(SQLiteError) {
        noteTransaction(sql)
        try client.execute(database: database, sql)
        changed.formUnion(Self.writtenTables(sql))
    }

    func query(_ sql: String, _ arguments: [SQLValue]) throws(SQLiteError) -> (columns: [String], rows: [[SQLValue]]) {
        // dqlite replicates what its "execute" request runs; its "query" request only reads.
        let written = Self.writtenTables(sql)
        guard written.isEmpty else {
            try client.execute(database: database, sql, arguments)
            changed.formUnion(written)
            return ([], [])
        }
        return try client.query(database: database, sql, arguments)
    }

    func takeChangedTables() -> Set<String> {
        defer { changed.removeAll() }
        return changed
    }

    /// Whether a transaction is open, from the statements that open and end one (dqlite has no
    /// autocommit query). An ended one counts as ended even if its COMMIT failed: dqlite rolls
    /// a failed commit back.
    private func noteTransaction(_ sql: String) {
        let head = sql.prefix(16).uppercased()
        if head.hasPrefix("BEGIN") { inTransaction = true }
        if head.hasPrefix("COMMIT") || head.hasPrefix("ROLLBACK") || head.hasPrefix("END") { inTransaction = false }
    }

    /// The tables a statement (or a script of them) inserts into, updates or deletes from. dqlite
    /// has no update hook, so they are read from the SQL, which Vigil writes itself: statements
    /// start with INSERT, REPLACE, UPDATE or DELETE, and name their table next.
    static func writtenTables(_ sql: String) -> Set<String> {
        let words = sql.split(whereSeparator: { $0.isWhitespace || $0 == "(" || $0 == ";" }).map { $0.uppercased() }
        var tables = Set<String>()
        var index = 0
        while index < words.count {
            let word = words[index]
            var target: Int?
            switch word {
            case "INSERT", "REPLACE":
                target = words[index...].firstIndex(of: "INTO").map { $0 + 1 }
            case "UPDATE":
                target = index + 1
                if words.count > index + 2, words[index + 1] == "OR" { target = index + 3 }
            case "DELETE":
                target = words.count > index + 1 && words[index + 1] == "FROM" ? index + 2 : nil
            default:
                break
            }
            if let target, target < words.count {
                tables.insert(words[target].lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "\"`[]")))
                index = target
            }
            index += 1
        }
        return tables
    }
}
