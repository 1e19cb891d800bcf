import ArgumentParser
import Bus
import Foundation
import Incidents
import VigilProtocol

struct FollowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "follow",
        abstract: "Follow an incident's channel: print its current state, then each change, as JSON lines.",
        discussion: """
            The first line is {"type":"snapshot",...}; each later line is an event of the incident channel \
            (see docs/protocol.md). Gaps and lost heartbeats trigger a new snapshot, announced on stderr. \
            Ends when the incident closes.
            """)

    @Argument(help: "The incident id.")
    var incident: Int64

    @OptionGroup var client: ClientOptions

    struct SnapshotLine: Encodable {
        var type = "snapshot"
        var seq: Int64
        var incident: Incident
        var cameras: [SelectedCamera]
    }

    func run() throws {
        try reportingFailures(json: client.json) {
            // A cluster's coordinator that goes silent is not waited for: the leader is found again.
            let inCluster = (try client.serverInfo()).cluster != nil
            // The last sequence printed; -1 until the first snapshot.
            var printed: Int64 = -1
            while true {
                let followed = printed >= 0
                let bus: BusClient
                do {
                    bus = try client.connect()
                } catch where followed && inCluster {
                    continue  // an election runs: ask again (connect waits up to --timeout itself)
                }
                defer { bus.close() }
                do {
                    try follow(on: bus, resumingAfter: followed ? printed : nil, staysWithServer: !inCluster, printed: &printed)
                    return
                } catch let error as CommandFailure where inCluster && printed >= 0 && error.code == "server_unreachable" {
                    FileHandle.standardError.write(Data("vigil follow: the coordinator went silent; following the cluster's leader\n".utf8))
                }
            }
        }
    }

    /// Follows the channel on one server until the incident closes; when `staysWithServer` is
    /// false, until the server goes silent too (`server_unreachable` is thrown then).
    private func follow(on bus: BusClient, resumingAfter: Int64?, staysWithServer: Bool, printed: inout Int64) throws {
        var printedHere = printed
        defer { printed = printedHere }
        try client.call {
            // The channel's topic is per agency: ask the server which agency this key stands for.
            let identity = try bus.request(.sessionIdentity, body: [String: String](), as: [String: String?].self, timeout: client.requestTimeout)
            try bus.follow(
                topic: EventChannel.incident(incident, agency: (identity["agency"] ?? nil) ?? client.agency).topic,
                resumingAfter: resumingAfter, staysWithServer: staysWithServer,
                snapshot: { held in
                    let snapshot = try bus.request(
                        .incidentSnapshot, body: SnapshotRequest(incident: incident, resyncAfter: held), as: IncidentSnapshot.self,
                        timeout: client.requestTimeout)
                    // A resynchronisation prints the state again only when it changed since the last line printed.
                    if snapshot.incident.sequence != printedHere { try emit(snapshot) }
                    printedHere = snapshot.incident.sequence
                    return snapshot.incident.status.holdsSelection ? snapshot.incident.sequence : nil
                },
                onUpdate: { event in
                    FileHandle.standardOutput.write(event.payload + Data("\n".utf8))
                    printedHere = event.seq
                    return event.type == "incident.closed" ? .stop : .keepFollowing
                },
                onResync: { reason in
                    FileHandle.standardError.write(Data("vigil follow: resynchronising: \(reason)\n".utf8))
                })
        }
    }

    private func emit(_ snapshot: IncidentSnapshot) throws {
        try client.printJSON(SnapshotLine(seq: snapshot.incident.sequence, incident: snapshot.incident, cameras: snapshot.cameras))
    }
}
