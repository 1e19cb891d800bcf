import Foundation

/// Writes a request's or a reply's envelope around its coded body, by hand.
///
/// `JSONEncoder` costs several microseconds per envelope, mostly in generic machinery (key
/// strategies, sorting, dynamic casts), and a command's round trip pays for an envelope four
/// times. An envelope is a handful of fixed members, so it is written directly, in the order the
/// coder sorts keys, with the coder's escaping: the bytes are those `BusProtocol.encoder` writes.
/// Only the body goes through the coder.
enum Envelope {
    enum Member {
        /// A JSON string.
        case string(String)
        /// JSON text written as it is: a number, `true`, or what the coder made of a body.
        case json(Data)
    }

    /// A JSON object of `members`, in the order given (the caller gives them sorted by key).
    static func object(_ members: KeyValuePairs<String, Member>) -> Data {
        // Built as bytes and made Data once: appending to Data byte by byte costs more than the coder.
        var json: [UInt8] = []
        json.reserveCapacity(96 + members.reduce(0) { total, member in
            if case .json(let text) = member.value { return total + text.count }
            return total
        })
        json.append(UInt8(ascii: "{"))
        for (index, (key, value)) in members.enumerated() {
            if index > 0 { json.append(UInt8(ascii: ",")) }
            appendString(key, to: &json)
            json.append(UInt8(ascii: ":"))
            switch value {
            case .string(let text): appendString(text, to: &json)
            case .json(let text): json.append(contentsOf: text)
            }
        }
        json.append(UInt8(ascii: "}"))
        return Data(json)
    }

    /// A JSON string as `BusProtocol.encoder` writes one: quotes, backslashes and control
    /// characters escaped; slashes and everything else as they are, in UTF-8.
    static func appendString(_ text: String, to json: inout [UInt8]) {
        json.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { utf8 in
            guard utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
                json.append(contentsOf: utf8)
                return
            }
            for byte in utf8 {
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): json.append(contentsOf: [UInt8(ascii: "\\"), byte])
                case 0x0A: json.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
                case 0x0D: json.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
                case 0x09: json.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
                case 0x08: json.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
                case 0x0C: json.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
                case ..<0x20: json.append(contentsOf: Array("\\u00".utf8) + [hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0xF)]])
                default: json.append(byte)
                }
            }
        }
        json.append(UInt8(ascii: "\""))
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)
}
