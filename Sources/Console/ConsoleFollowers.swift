import Bus
import Foundation
import Incidents
import ServiceLifecycle
import Synchronization
import VigilProtocol

/// Tells each logged-in page, as it happens, which of its agency's incidents changed: the pages
/// follow the agency's channels (`GET /api/events`) instead of asking every second or two.
///
/// A page is told only that a change happened (its channel, sequence and type, never its body),
/// on the channels the bus would let the session's user subscribe to (`mayFollow`, the bus's own
/// rule). It then reads the change with `incident.snapshot` or `incident.list` as its user, so
/// what it learns still passes through the operations, their checks and their audit.
///
/// Views are on no channel: a page is told that one started or stopped under an incident (from
/// the audit entries the server publishes) when its agency's `view.list` there would show it
/// (`viewListShows`), and reads `view.list` then, not every few seconds: each reading of who is
/// watching is an audit entry.
final class ConsoleFollowers: Service, Sendable {
    /// What a page is told: one change, or that its stream ends (and why).
    enum Message: Sendable {
        case change(Change)
        /// Sent to every page every ``keepAliveInterval``: a proxy keeps the stream open, a page
        /// gone away is noticed (the write fails), and the session is checked again.
        case keepAlive
        /// The session opened a newer stream than its ``maximumStreamsPerSession`` allow.
        case replaced
    }

    struct Change: Sendable, Encodable {
        let channel: String
        let seq: Int64
        let type: String
    }

    /// A page that reloads opens a new stream before the server notices the old one is gone
    /// (at its next write): a session's oldest stream ends beyond this many.
    static let maximumStreamsPerSession = 4
    static let keepAliveInterval: Duration = .seconds(15)

    private struct Follower {
        let session: String
        let identity: BusIdentity
        let sink: AsyncStream<Message>.Continuation
    }

    /// Whether `agency`'s `view.list` under an incident shows a view of a camera by an agency.
    typealias ViewListRule = @Sendable (_ camera: String, _ viewer: String, _ incident: Int64, _ agency: String) async -> Bool

    private let bus: BusServer
    private let mayFollow: @Sendable (BusIdentity, String) -> Bool
    private let viewListShows: ViewListRule
    /// By number, in the order they were opened.
    private let followers = Mutex<(next: UInt64, byNumber: [UInt64: Follower])>((0, [:]))

    init(bus: BusServer, mayFollow: @escaping @Sendable (BusIdentity, String) -> Bool, viewListShows: @escaping ViewListRule) {
        (self.bus, self.mayFollow, self.viewListShows) = (bus, mayFollow, viewListShows)
    }

    /// The changes for `identity`'s page, whose session cookie is `session`, until the page
    /// stops reading or the console stops. A page slower than 64 changes loses the oldest: it
    /// reads the incident's state anyway, not the changes.
    func follow(session: String, as identity: BusIdentity) -> AsyncStream<Message> {
        let (stream, sink) = AsyncStream.makeStream(of: Message.self, bufferingPolicy: .bufferingNewest(64))
        let (number, replaced) = followers.withLock { followers in
            followers.next += 1
            let number = followers.next
            followers.byNumber[number] = Follower(session: session, identity: identity, sink: sink)
            return (number, Self.take(session, keepingNewest: Self.maximumStreamsPerSession, from: &followers.byNumber))
        }
        sink.onTermination = { [weak self] _ in _ = self?.followers.withLock { $0.byNumber.removeValue(forKey: number) } }
        for follower in replaced {
            follower.sink.yield(.replaced)
            follower.sink.finish()
        }
        return stream
    }

    /// The session's streams end: it logged out or ended.
    func end(session: String) {
        for follower in followers.withLock({ Self.take(session, keepingNewest: 0, from: &$0.byNumber) }) { follower.sink.finish() }
    }

    /// Takes `session`'s streams out of `followers`, oldest first, but for its newest `keeping`.
    private static func take(_ session: String, keepingNewest keeping: Int, from followers: inout [UInt64: Follower]) -> [Follower] {
        followers.filter { $0.value.session == session }.keys.sorted().dropLast(keeping).compactMap { followers.removeValue(forKey: $0) }
    }

    private struct Header: Decodable {
        let channel: String
        let seq: Int64
        let type: String
    }

    /// Passes each event of an incident or incident-list channel on to its agency's pages, and
    /// keeps the streams alive, until the server stops; then ends every stream.
    func run() async throws {
        let published = bus.observePublished(prefix: "incident")
        let audited = bus.observePublished(prefix: EventChannel.audit.topic)
        await cancelWhenGracefulShutdown { [self] in
            await withDiscardingTaskGroup { group in
                group.addTask {
                    while (try? await Task.sleep(for: Self.keepAliveInterval)) != nil { self.send(.keepAlive, where: { _ in true }) }
                }
                group.addTask {
                    for await (_, payload) in audited { await self.passView(payload) }
                }
                for await (topic, payload) in published { pass(topic: topic, payload: payload) }
                group.cancelAll()
            }
        }
        let all = followers.withLock { followers in
            defer { followers.byNumber.removeAll() }
            return followers.byNumber.values
        }
        for follower in all { follower.sink.finish() }
    }

    private func pass(topic: String, payload: Data) {
        let agency: String
        switch EventChannel(topic: topic) {
        case .incident(_, let copyFor)?, .incidents(let copyFor)?: agency = copyFor
        default: return
        }
        guard let header = try? BusProtocol.decoder.decode(Header.self, from: payload) else { return }
        let change = Change(channel: header.channel, seq: header.seq, type: header.type)
        send(.change(change)) { $0.agency == agency && mayFollow($0, topic) }
    }

    private struct AuditEvent: Decodable {
        struct Entry: Decodable {
            let record: AuditRecord
        }

        let type: String
        let body: Entry
    }

    /// A view started or stopped under an incident: told to the pages of the incident's agencies
    /// whose `view.list` shows it (`seq` 0: views are on no channel).
    private func passView(_ payload: Data) async {
        guard let event = try? BusProtocol.decoder.decode(AuditEvent.self, from: payload), event.type == "audit.entry" else { return }
        let record = event.body.record
        guard ["view.started", "view.stopped"].contains(record.action), let incident = record.incident, let camera = record.cameras?.first,
            let viewer = record.agency
        else { return }
        let change = Message.change(Change(channel: EventChannel.incident(incident, agency: viewer).name, seq: 0, type: record.action))
        var shown: [String: Bool] = [:]
        for follower in followers.withLock({ Array($0.byNumber.values) }) {
            let agency = follower.identity.agency
            guard mayFollow(follower.identity, EventChannel.incident(incident, agency: agency).topic) else { continue }
            if shown[agency] == nil { shown[agency] = await viewListShows(camera, viewer, incident, agency) }
            if shown[agency] == true { follower.sink.yield(change) }
        }
    }

    private func send(_ message: Message, where follows: (BusIdentity) -> Bool) {
        for follower in followers.withLock({ Array($0.byNumber.values) }) where follows(follower.identity) {
            follower.sink.yield(message)
        }
    }
}
