internal import CSQLite
import Foundation

/// A value bound to or read from an SQLite statement.
enum SQLValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
}

/// One connection to the Vigil database, owned by exactly this object and closed with it: a
/// SQLite file in this process (the embedded default), or the database a dqlite cluster
/// replicates (`vigil serve --cluster`). Callers see the same SQL either way.
///
/// - Important: Not thread-safe. ``Database`` confines each connection to its own queue.
final class SQLiteConnection {
    private let statements: any SQLStatements

    /// Opens (and creates) the database file in WAL mode with foreign keys on, a busy timeout,
    /// and `synchronous=FULL`, so that a committed change survives a crash of the process or the host.
    ///
    /// - Parameter readOnly: a connection that only reads (`SQLITE_OPEN_READONLY`): in WAL mode it
    ///   reads the last committed state while the writer writes, and can never write.
    init(path: String, readOnly: Bool = false) throws(SQLiteError) {
        statements = try LocalSQLite(path: path, readOnly: readOnly)
    }

    /// A connection to database `name` through a dqlite node, which passes every statement to
    /// the cluster's leader; a write commits once a majority of the cluster has it.
    init(replicatedAt node: String, through transport: any ReplicationTransport, name: String, timeout: Duration = .seconds(5)) throws(SQLiteError) {
        statements = try ReplicatedStatements(node: node, through: transport, name: name, timeout: timeout)
        try execute("PRAGMA foreign_keys=ON")
    }

    /// Runs one or more statements that return no rows.
    func execute(_ sql: String) throws(SQLiteError) {
        try statements.execute(sql)
    }

    /// Runs one statement with arguments and returns every row.
    @discardableResult
    func query(_ sql: String, _ arguments: [SQLValue] = []) throws(SQLiteError) -> [Row] {
        let (names, values) = try statements.query(sql, arguments)
        let columns = Row.Columns(names: names)
        return values.map { Row(columns: columns, values: $0) }
    }

    /// Runs `body` in an immediate transaction: committed if it returns, rolled back if it throws.
    func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// Runs `body` in a read transaction (`BEGIN DEFERRED`): its queries see one snapshot, even
    /// while another connection commits (WAL).
    func readTransaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN DEFERRED")
        defer { try? execute("COMMIT") }
        return try body()
    }

    /// Whether a transaction is open.
    var inTransaction: Bool {
        statements.inTransaction
    }

    /// The tables rows were inserted into, updated or deleted from since the last call.
    func takeChangedTables() -> Set<String> {
        statements.takeChangedTables()
    }

    /// The `PRAGMA user_version` that migrations advance.
    var userVersion: Int64 {
        get throws(SQLiteError) { try query("PRAGMA user_version").first?.integer(0) ?? 0 }
    }
}

/// What runs a connection's SQL: SQLite in this process, or a dqlite node.
protocol SQLStatements: AnyObject {
    func execute(_ sql: String) throws(SQLiteError)
    /// Column names and every row's values.
    func query(_ sql: String, _ arguments: [SQLValue]) throws(SQLiteError) -> (columns: [String], rows: [[SQLValue]])
    var inTransaction: Bool { get }
    func takeChangedTables() -> Set<String>
}

/// SQLite in this process, on a file.
private final class LocalSQLite: SQLStatements {
    private let handle: OpaquePointer
    /// The tables rows were inserted into, updated or deleted from since ``takeChangedTables()``
    /// (SQLite's update hook, which runs on the thread of the statement).
    private let changedTables = ChangedTables()

    private final class ChangedTables {
        var names = Set<String>()
    }

    init(path: String, readOnly: Bool) throws(SQLiteError) {
        var raw: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX
        let status = sqlite3_open_v2(path, &raw, flags, nil)
        guard status == SQLITE_OK, let raw else {
            let message = raw.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close_v2(raw)
            throw SQLiteError(code: status, message: "\(message): \(path)", sql: nil)
        }
        handle = raw
        sqlite3_extended_result_codes(handle, 1)
        if !readOnly {
            sqlite3_update_hook(handle, { context, _, _, table, _ in
                guard let context, let table else { return }
                Unmanaged<ChangedTables>.fromOpaque(context).takeUnretainedValue().names.insert(String(cString: table))
            }, Unmanaged.passUnretained(changedTables).toOpaque())
        }
        try execute(readOnly
            ? "PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;"
            : "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;")
    }

    deinit {
        for statement in prepared.values { sqlite3_finalize(statement) }
        sqlite3_close_v2(handle)
    }

    /// Statements prepared once and reset after each use, by their SQL: the same few statements
    /// run again and again (a relay's view decisions every second, each read's `BEGIN`), and
    /// parsing one costs more than running it.
    private var prepared: [String: OpaquePointer] = [:]
    /// The most statements kept; past it the cache starts over (SQL made from changing text
    /// would otherwise grow it without end).
    private static let maximumPrepared = 128

    /// The statement for `sql`, prepared now or earlier; reset and unbound when `use` returns.
    private func withStatement<T>(_ sql: String, _ use: (OpaquePointer) throws(SQLiteError) -> T) throws(SQLiteError) -> T {
        let statement: OpaquePointer
        if let cached = prepared[sql] {
            statement = cached
        } else {
            var raw: OpaquePointer?
            let status = sqlite3_prepare_v2(handle, sql, -1, &raw, nil)
            guard status == SQLITE_OK, let made = raw else { throw error(status, sql: sql) }
            if prepared.count >= Self.maximumPrepared {
                for old in prepared.values { sqlite3_finalize(old) }
                prepared.removeAll()
            }
            prepared[sql] = made
            statement = made
        }
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        return try use(statement)
    }

    private func error(_ status: Int32, sql: String?) -> SQLiteError {
        SQLiteError(code: status, message: String(cString: sqlite3_errmsg(handle)), sql: sql)
    }

    func execute(_ sql: String) throws(SQLiteError) {
        // One statement (a transaction's BEGIN or COMMIT) is kept prepared; a script is run as it is.
        guard sql.contains(";") else {
            _ = try query(sql, [])
            return
        }
        let status = sqlite3_exec(handle, sql, nil, nil, nil)
        guard status == SQLITE_OK else { throw error(status, sql: sql) }
    }

    func query(_ sql: String, _ arguments: [SQLValue]) throws(SQLiteError) -> (columns: [String], rows: [[SQLValue]]) {
        try withStatement(sql) { statement throws(SQLiteError) in try run(statement, sql: sql, arguments) }
    }

    private func run(_ statement: OpaquePointer, sql: String, _ arguments: [SQLValue]) throws(SQLiteError) -> (columns: [String], rows: [[SQLValue]]) {
        for (offset, argument) in arguments.enumerated() {
            let index = Int32(offset + 1)
            let bound: Int32 = switch argument {
            case .null: sqlite3_bind_null(statement, index)
            case .integer(let value): sqlite3_bind_int64(statement, index, value)
            case .real(let value): sqlite3_bind_double(statement, index, value)
            case .text(let value):
                // With its byte count, not -1: a NUL inside the text must not cut it short.
                // (`utf8CString` keeps every byte and adds a terminator, so the pointer is never nil.)
                value.utf8CString.withUnsafeBufferPointer { sqlite3_bind_text(statement, index, $0.baseAddress, Int32($0.count - 1), vigil_sqlite_transient()) }
            }
            guard bound == SQLITE_OK else { throw error(bound, sql: sql) }
        }
        let count = sqlite3_column_count(statement)
        let columns = (0..<count).map { String(cString: sqlite3_column_name(statement, $0)) }
        var rows: [[SQLValue]] = []
        while true {
            let status = sqlite3_step(statement)
            if status == SQLITE_DONE { break }
            guard status == SQLITE_ROW else { throw error(status, sql: sql) }
            rows.append((0..<count).map { column in
                switch sqlite3_column_type(statement, column) {
                case SQLITE_INTEGER: .integer(sqlite3_column_int64(statement, column))
                case SQLITE_FLOAT: .real(sqlite3_column_double(statement, column))
                case SQLITE_NULL: .null
                default:
                    // By its byte count, so that stored text comes back whole, NULs included.
                    .text(String(
                        decoding: UnsafeBufferPointer(start: sqlite3_column_text(statement, column), count: Int(sqlite3_column_bytes(statement, column))),
                        as: UTF8.self))
                }
            })
        }
        return (columns, rows)
    }

    var inTransaction: Bool {
        sqlite3_get_autocommit(handle) == 0
    }

    func takeChangedTables() -> Set<String> {
        defer { changedTables.names.removeAll() }
        return changedTables.names
    }
}

/// One result row. Rows of several columns are read by name (`try row.text("owner")`), so a
/// query's column order cannot be misread; a missing column, or NULL where a value is required,
/// is an error (a row written by hand or by another version), never a crash. A single-column
/// result may be read by position (`row.integer(0)`).
struct Row: Sendable {
    /// A result's column names, shared by its rows.
    final class Columns: Sendable {
        let names: [String]
        let index: [String: Int]

        init(names: [String]) {
            self.names = names
            index = Dictionary(names.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        }
    }

    let columns: Columns
    let values: [SQLValue]

    func integer(_ column: Int) -> Int64? {
        if case .integer(let value) = values[column] { return value }
        return nil
    }

    func real(_ column: Int) -> Double? {
        switch values[column] {
        case .real(let value): value
        case .integer(let value): Double(value)
        default: nil
        }
    }

    func text(_ column: Int) -> String? {
        if case .text(let value) = values[column] { return value }
        return nil
    }

    /// The value of column `name`, or an error naming what is wrong with it.
    private func value(_ name: String) throws(SQLiteError) -> SQLValue {
        guard let index = columns.index[name] else {
            throw SQLiteError(code: 0, message: "no column \(name) in the result (\(columns.names.joined(separator: ", ")))", sql: nil)
        }
        return values[index]
    }

    private func required<T>(_ name: String, _ read: (SQLValue) -> T?) throws(SQLiteError) -> T {
        let value = try value(name)
        guard let read = read(value) else {
            throw SQLiteError(code: 0, message: "column \(name) holds \(value), not a value of type \(T.self)", sql: nil)
        }
        return read
    }

    func text(_ name: String) throws(SQLiteError) -> String {
        try required(name, Self.text)
    }

    func integer(_ name: String) throws(SQLiteError) -> Int64 {
        try required(name, Self.integer)
    }

    func real(_ name: String) throws(SQLiteError) -> Double {
        try required(name, Self.real)
    }

    /// NULL is nil; a value of another type is an error.
    func optionalText(_ name: String) throws(SQLiteError) -> String? {
        let value = try value(name)
        return value == .null ? nil : try required(name, Self.text)
    }

    func optionalInteger(_ name: String) throws(SQLiteError) -> Int64? {
        let value = try value(name)
        return value == .null ? nil : try required(name, Self.integer)
    }

    func optionalReal(_ name: String) throws(SQLiteError) -> Double? {
        let value = try value(name)
        return value == .null ? nil : try required(name, Self.real)
    }

    private static func text(_ value: SQLValue) -> String? {
        if case .text(let text) = value { return text }
        return nil
    }

    private static func integer(_ value: SQLValue) -> Int64? {
        if case .integer(let integer) = value { return integer }
        return nil
    }

    private static func real(_ value: SQLValue) -> Double? {
        switch value {
        case .real(let real): real
        case .integer(let integer): Double(integer)
        default: nil
        }
    }
}
