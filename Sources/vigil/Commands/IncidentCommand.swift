import ArgumentParser
import Bus
import Foundation
import Geo
import Incidents

struct IncidentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "incident",
        abstract: "Open, show and close incidents.",
        subcommands: [Open.self, Show.self, Close.self])

    struct Open: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Open an incident around a point; the server selects the cameras within the radius.")

        @Option(help: "The kind: \(IncidentKind.allCases.map(\.rawValue).joined(separator: ", ")).")
        var kind: String

        @Option(help: "The position, LAT,LON in WGS84 decimal degrees (for example 50.8467,4.3525).")
        var at: String

        @Option(help: "The radius in metres.")
        var radius: Double

        @Option(help: "A short title.")
        var title: String?

        @Flag(help: "Mark the incident as a training exercise.")
        var exercise = false

        @OptionGroup var client: ClientOptions

        func validate() throws {
            do {
                _ = try GeoPoint(parsing: at, field: "--at")
            } catch {
                throw ValidationError("--at: \(error.message)")
            }
        }

        func run() throws {
            try reportingFailures {
                let point = try GeoPoint(parsing: at, field: "--at")
                let body = OpenBody(kind: kind, at: point, radiusMeters: radius, title: title, exercise: exercise)
                let snapshot = try client.request("incident.open", body: body, as: IncidentSnapshot.self)
                if client.json {
                    try client.printJSON(snapshot)
                } else {
                    print(IncidentText.describe(snapshot, verb: "opened"))
                }
            }
        }

        struct OpenBody: Encodable {
            var kind: String
            var at: GeoPoint
            var radiusMeters: Double
            var title: String?
            var exercise: Bool
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show an incident and its cameras.")

        @Argument(help: "The incident id.")
        var incident: Int64

        @OptionGroup var client: ClientOptions

        func run() throws {
            try reportingFailures {
                let snapshot = try client.request("incident.snapshot", body: ["incident": incident], as: IncidentSnapshot.self)
                if client.json {
                    try client.printJSON(snapshot)
                } else {
                    print(IncidentText.describe(snapshot, verb: snapshot.incident.status.rawValue))
                }
            }
        }
    }

    struct Close: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Close an incident; its cameras are released.")

        @Argument(help: "The incident id.")
        var incident: Int64

        @OptionGroup var client: ClientOptions

        func run() throws {
            try reportingFailures {
                let snapshot = try client.request("incident.close", body: ["incident": incident], as: IncidentSnapshot.self)
                if client.json {
                    try client.printJSON(snapshot)
                } else {
                    print("Incident \(snapshot.incident.id) closed.")
                }
            }
        }
    }
}

/// The human-readable rendering of an incident.
enum IncidentText {
    static func describe(_ snapshot: IncidentSnapshot, verb: String) -> String {
        let incident = snapshot.incident
        var lines = [
            "Incident \(incident.id) \(verb): \(incident.kind.rawValue)\(incident.exercise ? " (exercise)" : "")"
                + "\(incident.title.map { " \"\($0)\"" } ?? "") at \(incident.center), radius \(Int(incident.radiusMeters)) m, "
                + "led by \(incident.leadAgency), \(snapshot.cameras.count) camera\(snapshot.cameras.count == 1 ? "" : "s")",
        ]
        for camera in snapshot.cameras {
            let place = camera.position.map { "\($0)" } ?? "position withheld"
            lines.append("  \(camera.id.padding(toLength: 34, withPad: " ", startingAt: 0)) "
                + "\(camera.owner.padding(toLength: 19, withPad: " ", startingAt: 0)) "
                + "\("\(camera.kind.rawValue)/\(camera.placeType)".padding(toLength: 20, withPad: " ", startingAt: 0)) "
                + "\(String(format: "%7.1f", camera.distanceMeters)) m  \(place)")
        }
        return lines.joined(separator: "\n")
    }
}
