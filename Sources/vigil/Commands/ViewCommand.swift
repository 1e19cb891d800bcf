import ArgumentParser
import Bus
import Foundation
import Incidents
import VigilProtocol

struct ViewCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "view",
        abstract: "Consultations going on now: who is watching which camera.",
        subcommands: [List.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Who is watching what: under an incident your agency takes part in, or, without --incident, your agency's cameras.",
            discussion: """
                Under an incident, the views of the cameras your agency may see there, and your agency's own; \
                without one, every view of the cameras your agency owns. Each reading is audited (view.listed). \
                The justifications' texts stay in the audit log.
                """)

        @Option(help: "The incident whose views to list.")
        var incident: Int64?
        @OptionGroup var client: ClientOptions

        private struct Listing: Decodable {
            var views: [OpenView]
        }

        func run() throws {
            try reportingFailures(json: client.json) {
                let listing = try client.request(.viewList, body: IncidentFilter(incident: incident), as: Listing.self)
                if client.json {
                    try client.printJSON(listing.views)
                    return
                }
                if listing.views.isEmpty { print("Nobody is watching.") }
                for view in listing.views {
                    print("\(view.camera)  \(view.agency)/\(view.user)  \(view.mode.rawValue)  incident \(view.incident)  \(view.reason)  "
                        + "since \(view.startedAt.formatted(.iso8601))")
                }
            }
        }
    }
}
