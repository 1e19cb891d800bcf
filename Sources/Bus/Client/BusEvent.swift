import Foundation

/// One event received on a subscribed channel.
public struct BusEvent: Sendable {
    public let topic: String
    public let channel: String
    public let seq: Int64
    public let type: String
    /// The whole event JSON, envelope included.
    public let payload: Data

    private struct Header: Decodable {
        var v: Int
        var channel: String
        var seq: Int64
        var type: String
    }

    private struct BodyWrapper<Body: Decodable>: Decodable {
        var body: Body
    }

    init(topic: String, payload: Data) throws(BusClientError) {
        guard let header = try? BusProtocol.decoder.decode(Header.self, from: payload), header.v == BusProtocol.version else {
            throw .protocolViolation("an event on \(topic) has no valid envelope")
        }
        self.topic = topic
        channel = header.channel
        seq = header.seq
        type = header.type
        self.payload = payload
    }

    /// Decodes the event's `body` member.
    public func body<Body: Decodable>(as type: Body.Type) throws(BusClientError) -> Body {
        do {
            return try BusProtocol.decoder.decode(BodyWrapper<Body>.self, from: payload).body
        } catch {
            throw .protocolViolation("event \(self.type) on \(channel): \(error)")
        }
    }
}
