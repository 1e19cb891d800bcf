import Metrics

/// The server's own metrics beside the bus's (`BusMetrics`) and the relay's (`RelayMetrics`):
/// command latency, snapshots, grant expiries, and the gauges `MetricsSampler` keeps.
public enum ServerMetrics {
    public static let commandDurationLabel = "vigil_bus_command_duration_seconds"
    /// From 50 µs (a refused request) to 1 s (a march over a long route).
    public static let commandDurationBuckets: [Duration] = [
        .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
        .milliseconds(500), .seconds(1),
    ]
    static let commandDuration = Metrics.Timer(label: commandDurationLabel)
    /// Snapshots served: late joiners, and followers resynchronising after a gap.
    static let snapshots = Counter(label: "vigil_bus_snapshots_total")
    /// Grants that reached the end of their validity.
    static let grantExpiries = Counter(label: "vigil_grant_expiries_total")

    /// A follower of `agency` took a new snapshot after losing `missed` events (its own count of
    /// what it lost, since XPUB drops silently): per agency, as agencies are few and known.
    static func resynchronised(agency: String, missed: Int64) {
        Counter(label: "vigil_bus_resyncs_total", dimensions: [("agency", agency)]).increment()
        Counter(label: "vigil_bus_events_missed_total", dimensions: [("agency", agency)]).increment(by: missed)
    }
}

/// Every metric `/metrics` exports, with its help text (Prometheus's `# HELP`). The exporter
/// takes the help from here (swift-metrics has no place for it), and every counter without
/// labels exists from the start, at 0, so that a rate over it is defined from the first scrape.
public enum MetricsCatalog {
    public static let help: [String: String] = [
        "vigil_bus_messages_in_total": "Messages received by the bus, by endpoint (command: requests; events: subscriptions).",
        "vigil_bus_messages_out_total": "Messages sent by the bus, by endpoint (command: replies; events: events; media: packets and replies).",
        "vigil_bus_drops_total": "Messages the bus could not send or queue, by endpoint (requests_queue: requests refused as server_busy; audit: authentication and subscription records dropped while the database could not take them).",
        "vigil_bus_authentication_failures_total": "Connections refused: unknown keys (ZAP) and failed CURVE handshakes.",
        "vigil_bus_subscriptions_refused_total": "Subscriptions refused: a topic the client's agency may not follow.",
        "vigil_bus_revoked_requests_total": "Requests refused because their key was withdrawn after the connection was let in.",
        "vigil_bus_event_endpoint_renewals_total": "Times the event endpoint was bound anew so that withdrawn keys' subscriptions end.",
        "vigil_bus_bad_messages_total": "Messages refused before decoding, by reason.",
        "vigil_bus_command_duration_seconds": "Time from a request's arrival to its reply.",
        "vigil_bus_snapshots_total": "Incident snapshots served to late joiners and resynchronising followers.",
        "vigil_bus_resyncs_total": "Followers of an agency that took a new snapshot after a gap.",
        "vigil_bus_events_missed_total": "Events an agency's followers reported lost before they resynchronised.",
        "vigil_grant_expiries_total": "Grants that reached the end of their validity (each audited).",
        "vigil_relay_bytes_sent_total": "Video bytes the embedded relay sent to viewers, on the media endpoint and over links.",
        "vigil_relay_packets_dropped_total": "Video packets viewers lost to their own slowness (dropped frame by frame).",
        "vigil_relay_live_feeds": "Camera feeds live on the embedded relay now.",
        "vigil_relay_viewers": "Views the embedded relay serves now (those sent to relay nodes included).",
        "vigil_relay_cameras_down": "Camera feeds down now on the embedded relay, by the code of what downed them.",
        "vigil_footage_bytes_recorded_total": "Bytes of footage the embedded relay wrote into segments.",
        "vigil_footage_bytes_deleted_total": "Bytes of footage deleted, at the end of retention or over the relay's byte budget (each range audited).",
        "vigil_footage_write_failures_total": "Segments that could not be written (a full disk): the footage is lost, live video goes on.",
        "vigil_footage_bytes": "Bytes of footage kept now.",
        "vigil_footage_bytes_held": "Bytes of footage an evidence hold covers now (deleted by neither retention nor the budget).",
        "vigil_open_incidents": "Incidents open or on hold now (they hold a camera selection).",
        "vigil_evidence_holds": "Evidence holds in force now (neither released nor expired).",
        "vigil_build_info": "The running Vigil's version, as a label; always 1.",
    ]

    /// The counters without labels, made at 0 before anything happens.
    static let countersFromTheStart = [
        "vigil_bus_snapshots_total", "vigil_grant_expiries_total", "vigil_relay_bytes_sent_total", "vigil_relay_packets_dropped_total",
        "vigil_footage_bytes_recorded_total", "vigil_footage_bytes_deleted_total", "vigil_footage_write_failures_total",
    ]

    /// Makes the counters that exist from the start, and the build's gauge.
    public static func registerAtStart(version: String) {
        for label in countersFromTheStart { Counter(label: label).increment(by: 0) }
        Gauge(label: "vigil_build_info", dimensions: [("version", version)]).record(1)
    }
}
