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

    /// The members of the JSON object `payload`, or nil (see the type's description).
    static func members(of payload: Data) -> [String: Member]? {
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
        mutating func object() -> [String: Member]? {
            skipWhitespace()
            guard take(UInt8(ascii: "{")) else { return nil }
            var members: [String: Member] = [:]
            skipWhitespace()
            if !take(UInt8(ascii: "}")) {
                repeat {
                    skipWhitespace()
                    guard let key = string() else { return nil }
                    skipWhitespace()
                    guard take(UInt8(ascii: ":")) else { return nil }
                    skipWhitespace()
                    let start = index
                    guard let value = memberValue(), members.updateValue(Member(value: value, range: start..<index), forKey: key) == nil else { return nil }
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

        /// A string of printable ASCII with the short escapes; nil for anything else.
        private mutating func string() -> String? {
            guard take(UInt8(ascii: "\"")) else { return nil }
            var text: [UInt8] = []
            while let byte = current {
                index += 1
                switch byte {
                case UInt8(ascii: "\""): return String(decoding: text, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard let escaped = current else { return nil }
                    index += 1
                    switch escaped {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): text.append(escaped)
                    case UInt8(ascii: "b"): text.append(0x08)
                    case UInt8(ascii: "f"): text.append(0x0C)
                    case UInt8(ascii: "n"): text.append(0x0A)
                    case UInt8(ascii: "r"): text.append(0x0D)
                    case UInt8(ascii: "t"): text.append(0x09)
                    default: return nil  // `\u` (left to the coder) or not an escape
                    }
                case 0x20..<0x80: text.append(byte)
                default: return nil  // a raw control character, or UTF-8 beyond ASCII
                }
            }
            return nil
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
            guard let isInteger = numberText(),
                  Double(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self))?.isFinite == true
            else { return nil }
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
            case UInt8(ascii: "\""): return string() != nil
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
                // Keys are only read here: a key given twice inside a body is the coder's to judge.
                var keys = Set<String>()
                repeat {
                    skipWhitespace()
                    guard let key = string(), keys.insert(key).inserted else { return false }
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
