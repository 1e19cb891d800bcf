import Foundation

/// Reads the top-level members of a request's or a reply's envelope without the coder.
///
/// `JSONDecoder` builds a map of the whole message and decodes each member through generic
/// machinery; a header of three members cost more than the bus's own work on a request. This
/// reader scans the message once, validating it as JSON, and hands back strings, integers and
/// booleans, and the byte range of any other value (a body, a result), which the coder then reads
/// on its own.
///
/// It is a fast path only: it answers nil for anything it does not read exactly as `JSONDecoder`
/// would (text beyond ASCII, `\u` escapes, a key given twice, deep nesting, invalid JSON), and the
/// caller then decodes with the coder, which also words the errors.
enum EnvelopeReader {
    /// A member's value, and where it stands in the message (byte offsets).
    struct Member: Equatable {
        let value: Value
        let range: Range<Int>
    }

    enum Value: Equatable {
        case string(String)
        case integer(Int)
        case boolean(Bool)
        /// Any other value: an object, an array, null, a number with a fraction or an exponent.
        case other
    }

    /// An envelope's members, in the order written (a handful: looked up one by one).
    struct Members: Sequence {
        fileprivate var entries: [(key: String, member: Member)] = []

        subscript(key: String) -> Member? { entries.first { $0.key == key }?.member }
        var keys: [String] { entries.map(\.key) }
        func makeIterator() -> some IteratorProtocol<(key: String, member: Member)> { entries.makeIterator() }
    }

    /// The members of the JSON object `payload`, or nil (see the type's description).
    static func members(of payload: Data) -> Members? {
        payload.withUnsafeBytes { bytes in
            var scanner = Scanner(bytes: bytes)
            return scanner.object()
        }
    }

    /// The deepest nesting read here; deeper messages go to the coder.
    static let maximumDepth = 64

    private struct Scanner {
        let bytes: UnsafeRawBufferPointer
        var index = 0

        init(bytes: UnsafeRawBufferPointer) {
            self.bytes = bytes
        }

        private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

        private mutating func skipWhitespace() {
            while let byte = current, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { index += 1 }
        }

        private mutating func take(_ byte: UInt8) -> Bool {
            guard current == byte else { return false }
            index += 1
            return true
        }

        /// The whole message: one object and nothing after it but whitespace.
        mutating func object() -> Members? {
            skipWhitespace()
            guard take(UInt8(ascii: "{")) else { return nil }
            var members = Members()
            skipWhitespace()
            if !take(UInt8(ascii: "}")) {
                repeat {
                    skipWhitespace()
                    guard let key = string() else { return nil }
                    skipWhitespace()
                    guard take(UInt8(ascii: ":")) else { return nil }
                    skipWhitespace()
                    let start = index
                    guard let value = memberValue(), members[key] == nil else { return nil }
                    members.entries.append((key, Member(value: value, range: start..<index)))
                    skipWhitespace()
                } while take(UInt8(ascii: ","))
                guard take(UInt8(ascii: "}")) else { return nil }
            }
            skipWhitespace()
            return index == bytes.count ? members : nil
        }

        private mutating func memberValue() -> Value? {
            let start = index
            guard let first = current else { return nil }
            switch first {
            case UInt8(ascii: "\""): return string().map(Value.string)
            case UInt8(ascii: "t"): return literal("true") ? .boolean(true) : nil
            case UInt8(ascii: "f"): return literal("false") ? .boolean(false) : nil
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                guard let isInteger = number() else { return nil }
                if isInteger, let value = Int(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)) {
                    return .integer(value)
                }
                return isInteger ? nil : .other  // an integer beyond Int: the coder's to refuse
            default:
                return skipValue(depth: 1) ? .other : nil
            }
        }

        /// A string of printable ASCII with the short escapes (``skipString()``); nil for anything else.
        private mutating func string() -> String? {
            guard let (range, plain) = skipString() else { return nil }
            let raw = UnsafeRawBufferPointer(rebasing: bytes[range])
            guard !plain else { return String(decoding: raw, as: UTF8.self) }
            var text: [UInt8] = []
            text.reserveCapacity(raw.count)
            var escaping = false
            for byte in raw {
                if escaping {
                    text.append(Self.shortEscapes[byte]!)  // skipString let through only these
                    escaping = false
                } else if byte == UInt8(ascii: "\\") {
                    escaping = true
                } else {
                    text.append(byte)
                }
            }
            return String(decoding: text, as: UTF8.self)
        }

        /// Skips a string: printable ASCII and the short escapes (`\u` is left to the coder, as
        /// are raw control characters and UTF-8 beyond ASCII). Where it stands between its
        /// quotes, and whether those bytes are its text (no escape); nil when it is not one to read.
        private mutating func skipString() -> (text: Range<Int>, plain: Bool)? {
            guard take(UInt8(ascii: "\"")) else { return nil }
            let start = index
            var plain = true
            while let byte = current {
                index += 1
                switch byte {
                case UInt8(ascii: "\""): return (start..<(index - 1), plain)
                case UInt8(ascii: "\\"):
                    guard let escaped = current, Self.shortEscapes[escaped] != nil else { return nil }
                    index += 1
                    plain = false
                case 0x20..<0x80: continue
                default: return nil
                }
            }
            return nil
        }

        /// The short escapes, by the letter after the backslash, and the byte each stands for.
        private static let shortEscapes: [UInt8: UInt8] = [
            UInt8(ascii: "\""): UInt8(ascii: "\""), UInt8(ascii: "\\"): UInt8(ascii: "\\"), UInt8(ascii: "/"): UInt8(ascii: "/"),
            UInt8(ascii: "b"): 0x08, UInt8(ascii: "f"): 0x0C, UInt8(ascii: "n"): 0x0A, UInt8(ascii: "r"): 0x0D, UInt8(ascii: "t"): 0x09,
        ]

        /// Whether two ranges of the message hold the same bytes.
        private func sameBytes(_ a: Range<Int>, _ b: Range<Int>) -> Bool {
            a.count == b.count && bytes[a].elementsEqual(bytes[b])
        }

        private mutating func literal(_ word: StaticString) -> Bool {
            let length = word.utf8CodeUnitCount
            guard index + length <= bytes.count else { return false }
            for offset in 0..<length where bytes[index + offset] != word.utf8Start[offset] { return false }
            index += length
            return true
        }

        /// A number as JSON writes one, within a Double's range (the coder refuses larger ones);
        /// whether it is an integer (no fraction, no exponent).
        private mutating func number() -> Bool? {
            let start = index
            guard let isInteger = numberText() else { return nil }
            // Only an exponent, or hundreds of digits, can take a number past a Double's range.
            let couldOverflow = !isInteger || index - start > 300
            if couldOverflow, Double(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self))?.isFinite != true {
                return nil
            }
            return isInteger
        }

        private mutating func numberText() -> Bool? {
            _ = take(UInt8(ascii: "-"))
            guard let first = current, Self.isDigit(first) else { return nil }
            index += 1
            if first != UInt8(ascii: "0") { skipDigits() }
            var isInteger = true
            if take(UInt8(ascii: ".")) {
                guard skipDigits() else { return nil }
                isInteger = false
            }
            if take(UInt8(ascii: "e")) || take(UInt8(ascii: "E")) {
                if !take(UInt8(ascii: "+")) { _ = take(UInt8(ascii: "-")) }
                guard skipDigits() else { return nil }
                isInteger = false
            }
            return isInteger
        }

        /// Skips digits; whether there was one at least.
        @discardableResult
        private mutating func skipDigits() -> Bool {
            let start = index
            while let byte = current, Self.isDigit(byte) { index += 1 }
            return index > start
        }

        private static func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }

        /// Skips any JSON value, checking it.
        private mutating func skipValue(depth: Int) -> Bool {
            guard depth <= EnvelopeReader.maximumDepth, let first = current else { return false }
            switch first {
            case UInt8(ascii: "\""): return skipString() != nil
            case UInt8(ascii: "t"): return literal("true")
            case UInt8(ascii: "f"): return literal("false")
            case UInt8(ascii: "n"): return literal("null")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return number() != nil
            case UInt8(ascii: "["):
                index += 1
                skipWhitespace()
                if take(UInt8(ascii: "]")) { return true }
                repeat {
                    skipWhitespace()
                    guard skipValue(depth: depth + 1) else { return false }
                    skipWhitespace()
                } while take(UInt8(ascii: ","))
                return take(UInt8(ascii: "]"))
            case UInt8(ascii: "{"):
                index += 1
                skipWhitespace()
                if take(UInt8(ascii: "}")) { return true }
                // A key given twice inside a body is left to the coder. Keys are compared as
                // bytes: one with an escape is left to the coder too (its bytes are not its text).
                var keys: [Range<Int>] = []
                repeat {
                    skipWhitespace()
                    guard let key = skipString(), key.plain, !keys.contains(where: { sameBytes($0, key.text) }) else { return false }
                    keys.append(key.text)
                    skipWhitespace()
                    guard take(UInt8(ascii: ":")) else { return false }
                    skipWhitespace()
                    guard skipValue(depth: depth + 1) else { return false }
                    skipWhitespace()
                } while take(UInt8(ascii: ","))
                return take(UInt8(ascii: "}"))
            default:
                return false
            }
        }
    }
}
