import Metrics

/// The bus's counters, through swift-metrics (the server exports them as Prometheus text).
struct BusMetrics: Sendable {
    let requestsIn = Counter(label: "vigil_bus_messages_in_total", dimensions: [("endpoint", "command")])
    let subscriptionsIn = Counter(label: "vigil_bus_messages_in_total", dimensions: [("endpoint", "events")])
    let repliesOut = Counter(label: "vigil_bus_messages_out_total", dimensions: [("endpoint", "command")])
    let eventsOut = Counter(label: "vigil_bus_messages_out_total", dimensions: [("endpoint", "events")])
    /// Replies that could not be sent (the client left, or its queue is full).
    let repliesDropped = Counter(label: "vigil_bus_drops_total", dimensions: [("endpoint", "command")])
    /// Events the socket refused. (XPUB drops silently for a subscriber whose queue is full; its
    /// follower then sees a gap and resynchronises.)
    let eventsDropped = Counter(label: "vigil_bus_drops_total", dimensions: [("endpoint", "events")])
    let requestsRefusedBusy = Counter(label: "vigil_bus_drops_total", dimensions: [("endpoint", "requests_queue")])
    /// Authentications and subscriptions whose audit records were dropped: more than 1,024 of a
    /// kind waited for a database that could not take them.
    let auditDropped = Counter(label: "vigil_bus_drops_total", dimensions: [("endpoint", "audit")])
    let authenticationFailures = Counter(label: "vigil_bus_authentication_failures_total")
    let subscriptionsRefused = Counter(label: "vigil_bus_subscriptions_refused_total")
    let mediaOut = Counter(label: "vigil_bus_messages_out_total", dimensions: [("endpoint", "media")])
    let mediaDropped = Counter(label: "vigil_bus_drops_total", dimensions: [("endpoint", "media")])
    /// Requests whose key was withdrawn after its connection was let in.
    let requestsRefusedRevoked = Counter(label: "vigil_bus_revoked_requests_total")
    /// Times the event endpoint was bound anew to end withdrawn keys' subscriptions.
    let eventEndpointRenewals = Counter(label: "vigil_bus_event_endpoint_renewals_total")
    let badFrames = Counter(label: "vigil_bus_bad_messages_total", dimensions: [("reason", "frames")])
}
