import Incidents
import Logging
import MediaRelay
import Metrics
import ServiceLifecycle

/// Every few seconds, the gauges an operator watches: open incidents, holds in force, live
/// feeds, viewers, and cameras down by reason. Until graceful shutdown.
struct MetricsSampler: Service {
    let relay: Relay
    let channels: ChannelMembers
    let holds: EvidenceHolds

    static let interval = Duration.seconds(5)

    func run() async {
        var downReasons = Set<String>()
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            Gauge(label: "vigil_open_incidents").record(channels.liveIncidentCount)
            if let held = try? await holds.activeCount() { Gauge(label: "vigil_evidence_holds").record(held) }
            let statistics = relay.statistics()
            Gauge(label: "vigil_relay_live_feeds").record(statistics.liveFeeds)
            Gauge(label: "vigil_relay_viewers").record(statistics.views)
            // A reason no feed has any more goes back to 0 rather than keep its last count.
            downReasons.formUnion(statistics.downByReason.keys)
            for reason in downReasons {
                Gauge(label: "vigil_relay_cameras_down", dimensions: [("reason", reason)]).record(statistics.downByReason[reason] ?? 0)
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: Self.interval) }
        }
    }
}
