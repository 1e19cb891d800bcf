/// dqlite's wire protocol, version 1 (https://canonical.com/dqlite/docs/reference/wire-protocol):
/// messages of 8-byte words, little endian; a one-word header (body size in words, type,
/// schema version), then the body's fields, each padded to whole words.
///
/// dqlite 1.11 ships no C client; this is the part of the protocol Vigil speaks: leader
/// discovery, cluster membership, and SQL text with parameters.
enum DqliteWire {
    static let protocolVersion: UInt64 = 1

    enum Request: UInt8 {
        case leader = 0
        case open = 3
        case execSQL = 8
        case querySQL = 9
        case add = 12
        case assign = 13
        case cluster = 16
    }

    enum Response: UInt8 {
        case failure = 0
        case server = 1
        case servers = 3
        case database = 4
        case result = 6
        case rows = 7
        case empty = 8
    }

    /// A cluster member's role (`node-info`).
    enum Role: UInt64, Sendable {
        case voter = 0
        case standby = 1
        case spare = 2
    }

    /// The end of a batch of rows: more batches follow (`part`) or the result is complete.
    static let rowsPart: UInt64 = 0xeeee_eeee_eeee_eeee
    static let rowsDone: UInt64 = 0xffff_ffff_ffff_ffff

    /// A message body being written.
    struct Body {
        private(set) var bytes: [UInt8] = []

        mutating func uint64(_ value: UInt64) {
            withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
        }

        mutating func uint32(_ value: UInt32) {
            withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
        }

        /// UTF-8, a terminating zero, zeros up to a whole word.
        mutating func text(_ value: String) {
            bytes.append(contentsOf: value.utf8)
            bytes.append(0)
            padToWord()
        }

        /// Schema 0's `params-tuple`: the count in one byte, a type byte each, padding, the values.
        mutating func parameters(_ values: [SQLValue]) throws(SQLiteError) {
            guard values.count <= 255 else {
                throw SQLiteError(code: 0, message: "more than 255 parameters in one statement", sql: nil)
            }
            bytes.append(UInt8(values.count))
            for value in values {
                let type: UInt8 = switch value {
                case .integer: 1
                case .real: 2
                case .text(let text): text.utf8.contains(0) ? 4 : 3
                case .null: 5
                }
                bytes.append(type)
            }
            padToWord()
            for value in values {
                switch value {
                case .integer(let integer): uint64(UInt64(bitPattern: integer))
                case .real(let real): uint64(real.bitPattern)
                // The wire's text ends at its first zero byte: a text holding one goes whole as
                // a blob (stored as such, read back as text).
                case .text(let text) where text.utf8.contains(0): blob(Array(text.utf8))
                case .text(let text): self.text(text)
                case .null: uint64(0)
                }
            }
        }

        /// Its length in a word, its bytes, zeros up to a whole word.
        mutating func blob(_ value: [UInt8]) {
            uint64(UInt64(value.count))
            bytes.append(contentsOf: value)
            padToWord()
        }

        private mutating func padToWord() {
            while bytes.count % 8 != 0 { bytes.append(0) }
        }

        /// The whole message: header and body.
        func message(_ type: Request) -> [UInt8] {
            var header = Body()
            header.uint32(UInt32(bytes.count / 8))
            header.bytes += [type.rawValue, 0, 0, 0]
            return header.bytes + bytes
        }
    }

    /// A received message body being read; reading past its end is a protocol error.
    struct Reader {
        private let bytes: [UInt8]
        private var offset = 0

        init(_ bytes: [UInt8]) {
            self.bytes = bytes
        }

        private func truncated() -> SQLiteError {
            SQLiteError(code: DqliteFailure.protocolError, message: "dqlite: a reply ends early (\(bytes.count) bytes)", sql: nil)
        }

        mutating func uint64() throws(SQLiteError) -> UInt64 {
            guard offset + 8 <= bytes.count else { throw truncated() }
            var value: UInt64 = 0
            for index in 0..<8 { value |= UInt64(bytes[offset + index]) << (8 * index) }
            offset += 8
            return value
        }

        mutating func uint32() throws(SQLiteError) -> UInt32 {
            guard offset + 4 <= bytes.count else { throw truncated() }
            var value: UInt32 = 0
            for index in 0..<4 { value |= UInt32(bytes[offset + index]) << (8 * index) }
            offset += 4
            return value
        }

        /// The next word, not consumed (a batch's end marker or a row's header).
        func peekUInt64() throws(SQLiteError) -> UInt64 {
            var copy = self
            return try copy.uint64()
        }

        mutating func text() throws(SQLiteError) -> String {
            guard let end = bytes[offset...].firstIndex(of: 0) else { throw truncated() }
            let value = String(decoding: bytes[offset..<end], as: UTF8.self)
            offset = (end + 1 + 7) / 8 * 8
            return value
        }

        mutating func blob() throws(SQLiteError) -> [UInt8] {
            let count = Int(try uint64())
            guard count >= 0, offset + count <= bytes.count else { throw truncated() }
            let value = Array(bytes[offset..<offset + count])
            offset = (offset + count + 7) / 8 * 8
            return value
        }

        /// A `row-tuple` of `columns` values: 4-bit type codes (the first column in the low
        /// nibble), padding to a word, then the values.
        mutating func row(columns: Int) throws(SQLiteError) -> [SQLValue] {
            let headerBytes = (columns + 1) / 2
            guard offset + headerBytes <= bytes.count else { throw truncated() }
            let types = (0..<columns).map { column in (bytes[offset + column / 2] >> (4 * UInt8(column % 2))) & 0x0f }
            offset += (headerBytes + 7) / 8 * 8
            var values: [SQLValue] = []
            values.reserveCapacity(columns)
            for type in types {
                switch type {
                case 1, 9: values.append(.integer(Int64(bitPattern: try uint64())))  // integer; Unix time
                case 11: values.append(.integer(try uint64() == 0 ? 0 : 1))  // a column declared BOOLEAN
                case 2: values.append(.real(Double(bitPattern: try uint64())))
                case 3, 10: values.append(.text(try text()))  // text; ISO 8601 (a column declared DATETIME)
                case 4: values.append(.text(String(decoding: try blob(), as: UTF8.self)))
                case 5: _ = try uint64(); values.append(.null)
                default:
                    throw SQLiteError(code: DqliteFailure.protocolError, message: "dqlite: unknown value type \(type) in a row", sql: nil)
                }
            }
            return values
        }
    }
}

/// dqlite's failure codes that are not SQLite's own (`SQLITE_IOERR_NOT_LEADER` and
/// `SQLITE_IOERR_LEADERSHIP_LOST` are SQLite extended codes that dqlite defines).
enum DqliteFailure {
    static let notLeader: Int32 = 10 | (40 << 8)
    static let leadershipLost: Int32 = 10 | (41 << 8)
    /// The reply could not be read (Vigil's own code, outside SQLite's range).
    static let protocolError: Int32 = 1001
    /// The node could not be reached, or the connection broke (Vigil's own code).
    static let unreachable: Int32 = 1002

    /// Whether a write failed because this node does not (or no longer) lead the cluster, or
    /// cannot be reached: the coordinator that asked must stop acting.
    static func meansNotLeading(_ code: Int32) -> Bool {
        code == notLeader || code == leadershipLost || code == unreachable
    }
}
