import Metrics

/// The server's own metrics beside the bus's (`BusMetrics`): command latency and snapshots.
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

    /// A follower of `agency` took a new snapshot after losing `missed` events (its own count of
    /// what it lost, since XPUB drops silently): per agency, as agencies are few and known.
    static func resynchronised(agency: String, missed: Int64) {
        Counter(label: "vigil_bus_resyncs_total", dimensions: [("agency", agency)]).increment()
        Counter(label: "vigil_bus_events_missed_total", dimensions: [("agency", agency)]).increment(by: missed)
    }
}
