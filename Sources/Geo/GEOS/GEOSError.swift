/// An error reported by GEOS, with the messages its context's error handler collected.
public struct GEOSError: Error, Sendable, CustomStringConvertible {
    public let operation: String
    public let messages: [String]

    public var description: String {
        "GEOS \(operation) failed: " + (messages.isEmpty ? "no message" : messages.joined(separator: "; "))
    }
}
