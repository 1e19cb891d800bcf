import Foundation

/// What a follower does after handling an update.
public enum FollowDecision: Sendable {
    case keepFollowing, stop
}

extension BusClient {
    /// Follows one channel in the ZeroMQ Guide's Clone pattern: subscribe, wait for a heartbeat
    /// (which proves the subscription is live), take a snapshot, then apply updates in sequence.
    ///
    /// Updates already contained in the snapshot are dropped; a gap in the sequence triggers a
    /// new snapshot; missing heartbeats for `heartbeatTimeout` trigger a reconnection. The
    /// follower returns when `onUpdate` says `.stop`.
    ///
    /// The first synchronisation fails fast (`serverUnreachable` when no heartbeat arrives in
    /// time; any error of `snapshot`); later ones retry while the server is unreachable.
    ///
    /// - Parameters:
    ///   - snapshot: takes and handles a snapshot of the channel, returning its sequence number,
    ///     or nil when the channel has ended (the follower then returns). It is given the last
    ///     sequence the follower had when it resynchronises (nil the first time), for the
    ///     snapshot request's `resync_after`.
    ///   - onUpdate: handles the next update in sequence.
    ///   - onResync: told why the follower is taking a new snapshot.
    ///   - resumingAfter: the last sequence a previous follower of this channel handled (it
    ///     followed another server of a cluster, which went silent), given to `snapshot`.
    ///   - staysWithServer: whether a silent server is waited for (reconnecting to it until it
    ///     answers); when false, its silence throws `serverUnreachable`, for the caller to follow
    ///     another (a cluster's new leader).
    public func follow(
        topic: String,
        heartbeatTimeout: Duration = .seconds(3),
        resumingAfter: Int64? = nil,
        staysWithServer: Bool = true,
        snapshot: (Int64?) throws -> Int64?,
        onUpdate: (BusEvent) throws -> FollowDecision,
        onResync: (String) -> Void
    ) throws {
        var pending: [BusEvent] = []
        guard var last = try synchronise(
            topic: topic, heartbeatTimeout: heartbeatTimeout, retrying: false, snapshot: { try snapshot(resumingAfter) }, pending: &pending)
        else { return }
        while true {
            let event: BusEvent
            if !pending.isEmpty {
                event = pending.removeFirst()
            } else if let received = try nextEvent(timeout: heartbeatTimeout) {
                event = received
            } else {
                guard staysWithServer else { throw BusClientError.serverUnreachable(endpoint: eventEndpoint, seconds: heartbeatTimeout.seconds) }
                onResync("no heartbeat for \(heartbeatTimeout.seconds) s; reconnecting")
                let held = last
                guard let resumed = try synchronise(
                    topic: topic, heartbeatTimeout: heartbeatTimeout, retrying: true, snapshot: { try snapshot(held) }, pending: &pending)
                else { return }
                last = resumed
                continue
            }
            guard event.topic == topic else { continue }  // heartbeats
            if event.seq <= last { continue }  // already in the snapshot
            if event.seq > last + 1 {
                onResync("gap on \(event.channel): expected \(last + 1), received \(event.seq)")
                guard let resumed = try snapshot(last) else { return }
                last = resumed
                if event.seq <= last { continue }
            }
            last = event.seq
            if try onUpdate(event) == .stop { return }
        }
    }

    /// (Re)subscribes, waits for the first heartbeat, then snapshots; when `retrying`, starts
    /// over while the server is unreachable.
    private func synchronise(
        topic: String, heartbeatTimeout: Duration, retrying: Bool, snapshot: () throws -> Int64?, pending: inout [BusEvent]
    ) throws -> Int64? {
        while true {
            resetSubscriptions()
            pending.removeAll()
            // The channel first: once a heartbeat arrives, the earlier subscription is active too.
            try subscribe(topic)
            try subscribe(BusProtocol.heartbeatTopic)
            var live = false
            let deadline = ContinuousClock.now.advanced(by: heartbeatTimeout)
            while !live, ContinuousClock.now < deadline {
                guard let event = try nextEvent(timeout: ContinuousClock.now.duration(to: deadline)) else { break }
                if event.topic == topic { pending.append(event) } else { live = true }
            }
            guard live else {
                if retrying { continue }
                throw BusClientError.serverUnreachable(endpoint: eventEndpoint, seconds: heartbeatTimeout.seconds)
            }
            do {
                return try snapshot()
            } catch BusClientError.serverUnreachable where retrying {
                continue
            }
        }
    }
}
