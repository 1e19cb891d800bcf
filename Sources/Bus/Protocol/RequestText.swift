import Foundation

/// The rule for text in requests: a string may not hold characters that make it display or
/// store as something else than what was sent. Refused are the C0 and C1 control characters
/// (NUL included) other than tab, line feed and carriage return, DEL, and the bidirectional
/// embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069), which reorder what a
/// reader sees. Everything else is stored as sent, never cut short.
public enum RequestText {
    /// Whether `scalar` is refused in request text.
    public static func isRefused(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09, 0x0A, 0x0D: false
        case 0x00...0x1F, 0x7F...0x9F, 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }

    /// The first refused character of `text`, if any.
    public static func firstRefused(in text: String) -> Unicode.Scalar? {
        text.unicodeScalars.first(where: isRefused)
    }

    /// The path (`body.justification.text`, `body.cameras[2]`) of the first string value under
    /// `root` in the JSON `payload` that holds a refused character, with that character.
    static func firstRefusedString(in payload: Data, under root: String) -> (path: String, scalar: Unicode.Scalar)? {
        // Most requests are plain ASCII without escapes: a refused character can then only be a
        // raw control byte, which is not valid JSON and never decodes. Skip the walk for them.
        guard mayHoldRefused(payload),
            let object = try? JSONSerialization.jsonObject(with: payload, options: [.fragmentsAllowed]) as? [String: Any],
            let value = object[root]
        else { return nil }
        return firstRefused(in: value, path: root)
    }

    private static func firstRefused(in value: Any, path: String) -> (path: String, scalar: Unicode.Scalar)? {
        switch value {
        case let text as String:
            return firstRefused(in: text).map { (path, $0) }
        case let array as [Any]:
            for (index, element) in array.enumerated() {
                if let found = firstRefused(in: element, path: "\(path)[\(index)]") { return found }
            }
        case let object as [String: Any]:
            for key in object.keys.sorted() {
                if let found = firstRefused(in: object[key]!, path: "\(path).\(key)") { return found }
            }
        default:
            break
        }
        return nil
    }

    /// False only when the payload is ASCII with no `\u`, `\b` or `\f` escape.
    private static func mayHoldRefused(_ payload: Data) -> Bool {
        var afterBackslash = false
        for byte in payload {
            if byte >= 0x7F { return true }
            if afterBackslash {
                if byte == UInt8(ascii: "u") || byte == UInt8(ascii: "b") || byte == UInt8(ascii: "f") { return true }
                afterBackslash = false
            } else if byte == UInt8(ascii: "\\") {
                afterBackslash = true
            }
        }
        return false
    }
}
