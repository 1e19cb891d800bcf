import Bus
import Foundation

/// A channel of the event endpoint: its topic (ending with `/`, because ZeroMQ subscriptions
/// are prefixes: `incident/1/siamu/` must not match `incident/12/siamu/`) and its name in the
/// events it carries. Each agency has its own topic for an incident, so that the server can
/// stop one agency's delivery (a subscription cannot be taken back from one XPUB peer) and give
/// each its own copy. See `docs/protocol.md`, "Events".
public enum EventChannel: Sendable, Hashable {
    /// One agency's copy of an incident's channel.
    case incident(Int64, agency: String)
    /// An owner's channel: preservation requests, owner notices, audit checkpoints.
    case owner(String)
    /// The states of the cameras an agency may see.
    case cameras(agency: String)
    /// The thumbnails an agency receives.
    case thumbnails(agency: String)
    /// New audit entries and checkpoints, for auditors.
    case audit
    /// The incidents an agency comes to take part in, and leaves (`incident.joined`, `incident.left`).
    case incidents(agency: String)

    /// The topic a client subscribes to.
    public var topic: String {
        switch self {
        case .incident(let id, let agency): "incident/\(id)/\(agency)/"
        case .owner(let owner): "owner/\(owner)/"
        case .cameras(let agency): "cameras/\(agency)/"
        case .thumbnails(let agency): "thumbnails/\(agency)/"
        case .audit: "audit/"
        case .incidents(let agency): "incidents/\(agency)/"
        }
    }

    /// The `channel` member of its events (an incident's is the same for every agency).
    public var name: String {
        switch self {
        case .incident(let id, _): "incident/\(id)"
        case .owner(let owner): "owner/\(owner)"
        case .cameras(let agency): "cameras/\(agency)"
        case .thumbnails(let agency): "thumbnails/\(agency)"
        case .audit: "audit"
        case .incidents(let agency): "incidents/\(agency)"
        }
    }

    /// What every agency's thumbnail topic starts with.
    public static let thumbnailsPrefix = "thumbnails/"

    /// The channel whose topic is exactly `topic`, if any (a shorter prefix is none).
    public init?(topic: String) {
        let parts = topic.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2, parts.last == "" else { return nil }
        switch (parts[0], parts.count) {
        case ("audit", 2): self = .audit
        case ("owner", 3) where !parts[1].isEmpty: self = .owner(parts[1])
        case ("cameras", 3) where !parts[1].isEmpty: self = .cameras(agency: parts[1])
        case ("thumbnails", 3) where !parts[1].isEmpty: self = .thumbnails(agency: parts[1])
        case ("incidents", 3) where !parts[1].isEmpty: self = .incidents(agency: parts[1])
        case ("incident", 4):
            guard let id = Int64(parts[1]), !parts[2].isEmpty else { return nil }
            self = .incident(id, agency: parts[2])
        default: return nil
        }
    }
}

extension BusServer {
    /// Publishes one event on `channel`: on its topic, with its name in the event.
    public func publish<Body: Encodable>(on channel: EventChannel, seq: Int64, type: String, at: Date = Date(), body: Body) {
        publish(topic: channel.topic, payload: BusProtocol.event(channel: channel.name, seq: seq, type: type, at: at, body: body))
    }
}
