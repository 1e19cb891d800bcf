import ArgumentParser
import Bus
import Foundation
import Incidents
import VigilProtocol

struct HoldCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hold",
        abstract: "Evidence holds: preserve cameras' footage for an incident (each owner receives a preservation request with its deadline).",
        subcommands: [Create.self, List.self, Release.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Place a hold on cameras × a footage time range for an incident.")

        @Option(help: "The incident the footage is evidence for.")
        var incident: Int64
        @Option(name: .customLong("camera"), help: "A camera id (repeatable).")
        var cameras: [String]
        @Option(help: "The start of the footage to keep, ISO 8601 UTC.")
        var from: String
        @Option(help: "The end of the footage to keep, ISO 8601 UTC.")
        var to: String
        @Option(help: "The legal reference (a prosecutor's decision, a police report number).")
        var legalReference: String
        @Option(help: "When the hold ends by itself, ISO 8601 UTC (default: when released).")
        var expires: String?
        @OptionGroup var client: ClientOptions

        func validate() throws {
            for (name, value) in [("--from", from), ("--to", to), ("--expires", expires ?? from)] where (try? Date(value, strategy: .iso8601)) == nil {
                throw ValidationError("\(name) '\(value)' is not an ISO 8601 time (for example 2026-11-22T14:00:00Z)")
            }
        }

        func run() throws {
            try reportingFailures(json: client.json) {
                let request = HoldRequest(
                    incident: incident, cameras: cameras, footageFrom: try Date(from, strategy: .iso8601), footageTo: try Date(to, strategy: .iso8601),
                    legalReference: legalReference, expiresAt: try expires.map { try Date($0, strategy: .iso8601) })
                let hold = try client.request(.holdCreate, body: request, as: EvidenceHold.self)
                if client.json {
                    try client.printJSON(hold)
                    return
                }
                print("Hold \(hold.id) on \(hold.cameras.count) cameras for incident \(hold.incident); preservation requested from:")
                for request in hold.preservationRequests {
                    print("  \(request.owner): \(request.cameras.count) cameras, deadline \(request.deadline.formatted(.iso8601))"
                        + (request.footageMayBeLost ? " (passed: some footage may already be overwritten)" : ""))
                }
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The holds your agency placed or that cover its cameras.")

        @Option(help: "Only the holds of this incident.")
        var incident: Int64?
        @OptionGroup var client: ClientOptions

        func run() throws {
            try reportingFailures(json: client.json) {
                let holds = try client.request(.holdList, body: IncidentFilter(incident: incident), as: [EvidenceHold].self)
                if client.json {
                    try client.printJSON(holds)
                    return
                }
                for hold in holds {
                    print("hold \(hold.id)  incident \(hold.incident)  \(hold.cameras.count) cameras  "
                        + "\(hold.footageFrom.formatted(.iso8601))–\(hold.footageTo.formatted(.iso8601))  \(hold.legalReference)"
                        + (hold.releasedAt != nil ? "  [released]" : ""))
                }
            }
        }
    }

    struct Release: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Release a hold your agency placed; retention applies again.")

        @Argument(help: "The hold id.")
        var hold: Int64
        @Option(help: "Why it is released.")
        var reason: String
        @OptionGroup var client: ClientOptions

        func run() throws {
            try reportingFailures(json: client.json) {
                let released = try client.request(.holdRelease, body: ReleaseHoldBody(hold: hold, reason: reason), as: EvidenceHold.self)
                if client.json {
                    try client.printJSON(released)
                } else {
                    print("Hold \(released.id) released.")
                }
            }
        }
    }
}
