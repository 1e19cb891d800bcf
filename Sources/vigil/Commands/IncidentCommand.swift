import ArgumentParser
import Bus
import Foundation
import Geo
import Incidents
import VigilProtocol

struct IncidentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "incident",
        abstract: "Open, change, hand over, show and close incidents.",
        subcommands: [Open.self, Update.self, Redraw.self, Move.self, HandOver.self, Show.self, HeadPassed.self, Export.self, Close.self])

    struct Open: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Open an incident around a point (--at, --radius), in a perimeter (--area) or along a march route (--route, --head, --tail).",
            discussion: "For a march, the server selects the march window: ahead of the head, the occupied stretch, behind the tail, side streets, arrival.")

        @Option(help: "The kind: \(IncidentKind.allCases.map(\.rawValue).joined(separator: ", ")).")
        var kind: String

        @Option(parsing: .unconditional, help: "The position, LAT,LON in WGS84 decimal degrees (for example 50.8467,4.3525).")
        var at: String?

        @Option(parsing: .unconditional, help: "The radius in metres.")
        var radius: Double?

        @Option(help: "A GeoJSON file with the incident's perimeter (a Polygon or MultiPolygon).")
        var area: String?

        @Option(parsing: .unconditional, help: "On the cameras whose field of view holds LAT,LON (a fire seen from across the square), instead of --at and --radius.")
        var sees: String?

        @Option(help: "A GeoJSON file with the march's declared route (a LineString).")
        var route: String?

        @Option(help: "With --area or --route: which feature of a FeatureCollection (from 0).")
        var feature = 0

        @Option(parsing: .unconditional, help: "With --route: the march head, LAT,LON or metres along the route.")
        var head: String?

        @Option(parsing: .unconditional, help: "With --route: the march tail, LAT,LON or metres along the route.")
        var tail: String?

        @Option(parsing: .unconditional, help: "With --route: the corridor width in metres (default 60).")
        var width: Double?

        @Option(parsing: .unconditional, help: "With --route: the window ahead of the head, in metres (default 300).")
        var aheadMeters: Double?

        @Option(parsing: .unconditional, help: "With --route: the time horizon ahead of the head, in seconds at the head's speed, when longer than --ahead-meters (default none).")
        var aheadSeconds: Double?

        @Option(parsing: .unconditional, help: "With --route: the window behind the tail, in metres (default 200).")
        var behindMeters: Double?

        @Option(parsing: .unconditional, help: "With --route: how far from a junction a side street's cameras are taken, in metres (default 80).")
        var sideStreetRadius: Double?

        @Option(parsing: .unconditional, help: "With --route: the radius around the head taken when it leaves the route, in metres (default 250).")
        var fallbackRadius: Double?

        @Option(help: "A short title.")
        var title: String?

        @Flag(help: "Mark the incident as a training exercise.")
        var exercise = false

        @Flag(help: "Open it as a draft: cameras are selected, but event-bound grants apply only once it is open.")
        var draft = false

        @OptionGroup var details: IncidentDetailOptions

        @OptionGroup var client: ClientOptions

        func validate() throws {
            let shapes = [at != nil || radius != nil, area != nil, route != nil, sees != nil].filter { $0 }.count
            guard shapes == 1 else { throw ValidationError("give --at and --radius, or --area, or --sees, or --route with --head and --tail") }
            if route != nil, head == nil || tail == nil { throw ValidationError("--route needs --head and --tail") }
            if let at {
                guard radius != nil else { throw ValidationError("--at needs --radius") }
                do {
                    _ = try GeoPoint(parsing: at, field: "--at")
                } catch {
                    throw ValidationError("--at: \(error.message)")
                }
            }
        }

        func run() throws {
            try reportingFailures(json: client.json) {
                var body = OpenIncidentBody(kind: kind, title: title, exercise: exercise)
                body.draft = draft ? true : nil
                body.details = try details.body()
                if let route, let head, let tail {
                    body.route = try GeoJSONGeometry.read(contentsOf: route, feature: feature)
                    body.head = WirePosition(try MarchArgument.position(head, "--head"))
                    body.tail = WirePosition(try MarchArgument.position(tail, "--tail"))
                    // The window's settings, checked by the server (march_invalid names the one at fault).
                    var march = MarchConfiguration()
                    let settings: [(Double?, WritableKeyPath<MarchConfiguration, Double>)] = [
                        (width, \.corridorWidthMeters), (aheadMeters, \.aheadMeters), (behindMeters, \.behindMeters),
                        (sideStreetRadius, \.sideStreetRadiusMeters), (fallbackRadius, \.fallbackRadiusMeters),
                    ]
                    for case let (value?, field) in settings { march[keyPath: field] = value }
                    march.aheadSeconds = aheadSeconds
                    if settings.contains(where: { $0.0 != nil }) || aheadSeconds != nil { body.march = march }
                } else if let area {
                    body.area = try GeoJSONGeometry.read(contentsOf: area, feature: feature)
                } else if let sees {
                    body.sees = WirePoint(try GeoPoint(parsing: sees, field: "--sees"))
                } else if let at {
                    body.at = WirePoint(try GeoPoint(parsing: at, field: "--at"))
                    body.radiusMeters = radius
                }
                let snapshot = try client.request(.incidentOpen, body: body, as: IncidentSnapshot.self)
                if client.json {
                    try client.printJSON(snapshot)
                } else {
                    print(IncidentText.describe(snapshot, verb: "opened"))
                }
            }
        }
    }

    struct Update: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change an incident's status, title or details.",
            discussion: """
                Statuses: draft → open ⇄ on-hold → closed → archived; draft, open and on-hold can be cancelled, \
                and cancelled incidents archived. Closing or cancelling releases the cameras.
                """)

        @Argument(help: "The incident id.")
        var incident: Int64
        @Option(help: "The new status: \(IncidentStatus.allCases.map(\.rawValue).joined(separator: ", ")).")
        var status: String?
        @Option(help: "A new title.")
        var title: String?
        @OptionGroup var details: IncidentDetailOptions
        @OptionGroup var client: ClientOptions

        func run() throws {
            try reportingFailures(json: client.json) {
                let body = UpdateIncidentBody(incident: incident, status: status, title: title, details: try details.body() ?? IncidentDetailsBody())
                let change = try client.request(.incidentUpdate, body: body, as: IncidentChange.self)
                if client.json {
                    try client.printJSON(change)
                } else {
                    print("Incident \(change.incidentId) \(change.incident.status.rawValue): changed \(change.fields.joined(separator: ", "))"
                        + (change.removed.isEmpty ? "" : "; \(change.removed.count) cameras released"))
                }
            }
        }
    }

    struct HandOver: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "handover",
            abstract: "Hand an incident over to another lead agency (--to) and/or commander; the previous lead stays as a participant.")

        @Argument(help: "The incident id.")
        var incident: Int64
        @Option(help: "The agency that takes the lead.")
        var to: String?
        @Option(help: "The named user who takes command (a user of the lead agency).")
        var commander: String?
        @OptionGroup var client: ClientOptions

        func validate() throws {
            guard to != nil || commander != nil else { throw ValidationError("give --to, --commander or both") }
        }

        func run() throws {
            try reportingFailures(json: client.json) {
                let change = try client.request(
                    .incidentHandover, body: HandOverIncidentBody(incident: incident, leadAgency: to, commander: commander), as: IncidentChange.self)
                if client.json {
                    try client.printJSON(change)
                } else {
                    print("Incident \(change.incidentId) handed over: led by \(change.incident.leadAgency)"
                        + (change.incident.details.commander.map { ", commanded by \($0)" } ?? ""))
                }
            }
        }
    }

    struct Redraw: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Redraw an incident's circle (--at, --radius) or perimeter (--area); followers receive the cameras added and removed.")

        @Argument(help: "The incident id.")
        var incident: Int64
        @Option(parsing: .unconditional, help: "The new centre, LAT,LON.")
        var at: String?
        @Option(parsing: .unconditional, help: "The new radius in metres.")
        var radius: Double?
        @Option(help: "A GeoJSON file with the new perimeter.")
        var area: String?
        @Option(help: "With --area: which feature of a FeatureCollection (from 0).")
        var feature = 0

        @OptionGroup var client: ClientOptions

        func validate() throws {
            guard (at != nil && radius != nil) != (area != nil) else { throw ValidationError("give --at with --radius, or --area") }
        }

        func run() throws {
            try reportingFailures(json: client.json) {
                let body = RedrawIncidentBody(
                    incident: incident,
                    area: try area.map { .perimeter(try GeoJSONGeometry.read(contentsOf: $0, feature: feature)) }
                        ?? .circle(center: try GeoPoint(parsing: at ?? "", field: "--at"), radiusMeters: radius ?? 0))
                let change = try client.request(.incidentRedraw, body: body, as: IncidentChange.self)
                if client.json {
                    try client.printJSON(change)
                } else {
                    print("Incident \(change.incidentId) redrawn: +\(change.added.count) -\(change.removed.count) cameras")
                }
            }
        }
    }

    struct Move: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move a march's head and tail; followers receive the cameras added, removed and relabelled.")

        @Argument(help: "The incident id.")
        var incident: Int64

        @Option(parsing: .unconditional, help: "The head, LAT,LON (snapped onto the route) or metres along the route.")
        var head: String

        @Option(parsing: .unconditional, help: "The tail, LAT,LON or metres along the route.")
        var tail: String

        @OptionGroup var client: ClientOptions

        func run() throws {
            try reportingFailures(json: client.json) {
                let body = MoveIncidentBody(
                    incident: incident, head: try MarchArgument.position(head, "--head"), tail: try MarchArgument.position(tail, "--tail"))
                let change = try client.request(.incidentMove, body: body, as: IncidentChange.self)
                if client.json {
                    try client.printJSON(change)
                    return
                }
                let march = change.incident.march
                print(String(format: "Incident %lld moved: head %.0f m, tail %.0f m of %.0f m%@; +%d -%d cameras, %d relabelled%@",
                             change.incidentId, march?.headMeters ?? 0, march?.tailMeters ?? 0, march?.routeLengthMeters ?? 0,
                             march?.onRoute == false ? " (head off the route)" : "", change.added.count, change.removed.count,
                             change.relabelled.count, change.events.isEmpty ? "" : "; " + change.events.joined(separator: ", ")))
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show an incident and its cameras.")

        @Argument(help: "The incident id.")
        var incident: Int64

        @OptionGroup var client: ClientOptions

        func run() throws {
            try reportingFailures(json: client.json) {
                let snapshot = try client.request(.incidentSnapshot, body: SnapshotRequest(incident: incident), as: IncidentSnapshot.self)
                if client.json {
                    try client.printJSON(snapshot)
                } else {
                    print(IncidentText.describe(snapshot, verb: snapshot.incident.status.rawValue))
                }
            }
        }
    }

    struct HeadPassed: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "head-passed",
            abstract: "A march's cameras with the moment its head passed each (from its journal): what to replay behind the tail.",
            discussion: "Play one back with `vigil watch --at` and the time printed beside it.")

        @Argument(help: "The march incident's id.")
        var incident: Int64
        @Option(help: "Only this window section: ahead, occupied, behind, side_street, arrival.")
        var section: String?
        @OptionGroup var client: ClientOptions

        func run() throws {
            try reportingFailures(json: client.json) {
                let result = try client.request(.incidentHeadPassed, body: HeadPassedBody(incident: incident, section: section), as: HeadPassedResult.self)
                if client.json {
                    try client.printJSON(result)
                    return
                }
                for passage in result.cameras {
                    let moment = passage.at.map { $0.formatted(.iso8601) + (passage.beforeOpening ? " (or before: passed when the march opened)" : "") }
                    print("\(passage.camera)  \(passage.section)  \(Int(passage.alongMeters)) m  \(moment ?? "not reached yet")")
                }
            }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write an incident as CAP 1.2 XML (--cap) or as GeoJSON with its selected cameras (--geojson).",
            discussion: "Confidential cameras keep their position withheld in the GeoJSON (null geometry).")

        @Argument(help: "The incident id.")
        var incident: Int64
        @Flag(help: "CAP 1.2 XML (OASIS Common Alerting Protocol).")
        var cap = false
        @Flag(help: "A GeoJSON FeatureCollection: the incident, then its cameras.")
        var geojson = false
        @Option(name: .shortAndLong, help: "The output file, or - for standard output.")
        var output = "-"
        @OptionGroup var client: ClientOptions

        func validate() throws {
            guard cap != geojson else { throw ValidationError("give --cap or --geojson") }
        }

        func run() throws {
            try reportingFailures(json: client.json) {
                let snapshot = try client.request(.incidentSnapshot, body: SnapshotRequest(incident: incident), as: IncidentSnapshot.self)
                let document = cap
                    ? Data(IncidentExport.cap(snapshot, sender: "vigil.\(try client.serverInfo().region)").utf8)
                    : try IncidentExport.geoJSON(snapshot) + Data("\n".utf8)
                if output == "-" {
                    FileHandle.standardOutput.write(document)
                } else {
                    do {
                        try document.write(to: URL(fileURLWithPath: output), options: .atomic)
                    } catch {
                        throw CommandFailure(.outputUnwritable, message: "\(output): \(error.localizedDescription)")
                    }
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
            try reportingFailures(json: client.json) {
                let change = try client.request(.incidentClose, body: IncidentReference(incident: incident), as: IncidentChange.self)
                if client.json {
                    try client.printJSON(change)
                } else {
                    print("Incident \(change.incidentId) closed; \(change.removed.count) cameras released.")
                }
            }
        }
    }
}

/// The detail options shared by `incident open` and `incident update`.
struct IncidentDetailOptions: ParsableArguments {
    @Option(help: "CAP severity: \(Severity.allCases.map(\.rawValue).joined(separator: ", ")).")
    var severity: String?
    @Option(help: "CAP urgency: \(Urgency.allCases.map(\.rawValue).joined(separator: ", ")).")
    var urgency: String?
    @Option(help: "CAP certainty: \(Certainty.allCases.map(\.rawValue).joined(separator: ", ")).")
    var certainty: String?
    @Option(name: .customLong("participant"), help: "A participating agency (repeat the option; on update it replaces the list).")
    var participants: [String] = []
    @Option(help: "The commander, a named user of the lead agency.")
    var commander: String?
    @Option(name: .customLong("ref"), help: "An external reference SYSTEM=ID, for example dispatch=CAD-2026-004211 (repeatable; ID empty removes it).")
    var references: [String] = []
    @Option(help: "The incident this one is part of (a group that split off a march).")
    var parent: Int64?

    /// The body members given, or nil when none is.
    func body() throws -> IncidentDetailsBody? {
        var refs: [String: String] = [:]
        for reference in references {
            guard let equals = reference.firstIndex(of: "=") else {
                throw CommandFailure(.referenceInvalid, message: "--ref \(reference): write SYSTEM=ID")
            }
            refs[String(reference[..<equals])] = String(reference[reference.index(after: equals)...])
        }
        let body = IncidentDetailsBody(
            severity: severity, urgency: urgency, certainty: certainty, participants: participants.isEmpty ? nil : participants,
            commander: commander, externalReferences: refs.isEmpty ? nil : refs, parent: parent)
        return body == IncidentDetailsBody() ? nil : body
    }
}

/// The human-readable rendering of an incident.
enum IncidentText {
    static func describe(_ snapshot: IncidentSnapshot, verb: String) -> String {
        let incident = snapshot.incident
        var lines = [
            "Incident \(incident.id) \(verb): \(incident.kind.rawValue)\(incident.exercise ? " (exercise)" : "")"
                + "\(incident.title.map { " \"\($0)\"" } ?? "")"
                + (incident.march != nil ? " along its route, head at \(incident.center), "
                    : snapshot.area != nil ? " in its perimeter (around \(incident.center), \(Int(incident.radiusMeters)) m across at most), "
                    : " at \(incident.center), radius \(Int(incident.radiusMeters)) m, ")
                + "led by \(incident.leadAgency), \(snapshot.cameras.count) camera\(snapshot.cameras.count == 1 ? "" : "s")",
        ]
        let details = incident.details
        lines.append("  \(incident.status.rawValue); severity \(details.severity.rawValue), urgency \(details.urgency.rawValue), "
            + "certainty \(details.certainty.rawValue)"
            + (details.commander.map { "; commander \($0)" } ?? "")
            + (details.participants.isEmpty ? "" : "; with \(details.participants.joined(separator: ", "))")
            + (details.externalReferences.isEmpty ? "" : "; refs " + details.externalReferences.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))
            + (details.parent.map { "; part of incident \($0)" } ?? "")
            + (snapshot.children.isEmpty ? "" : "; parts: " + snapshot.children.map(String.init).joined(separator: ", ")))
        if let march = incident.march {
            lines.append(String(format: "  march: head %.0f m, tail %.0f m of a %.0f m route%@", march.headMeters, march.tailMeters,
                                march.routeLengthMeters, march.onRoute ? "" : String(format: ", head %.0f m off the route", march.headOffsetMeters)))
            if let settings = march.settings { lines.append("  window: " + Self.describe(settings)) }
        }
        lines += TextTable.lines(snapshot.cameras.map { camera in
            let place = (camera.section.map { "\($0)  " } ?? "") + (camera.position.map { "\($0)" } ?? "position withheld")
            return [camera.id, camera.owner, "\(camera.kind.rawValue)/\(camera.placeType)", String(format: "%7.1f m  ", camera.distanceMeters) + place]
        }, indent: "  ")
        return lines.joined(separator: "\n")
    }

    /// A march window's settings, in the order the window is drawn.
    static func describe(_ settings: MarchConfiguration) -> String {
        let metres = { (value: Double) in String(format: "%.0f m", value) }
        return "corridor \(metres(settings.corridorWidthMeters)), ahead \(metres(settings.aheadMeters))"
            + (settings.aheadSeconds.map { String(format: " (or %.0f s at the head's speed, if farther)", $0) } ?? "")
            + ", behind \(metres(settings.behindMeters)), side streets \(metres(settings.sideStreetRadiusMeters)) of a junction"
            + ", arrival \(metres(settings.arrivalRadiusMeters)) around the end from \(metres(settings.arrivalTriggerMeters)) before it"
            + (settings.limit.map { ", at most \($0) cameras" } ?? "")
    }
}
