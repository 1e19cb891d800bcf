import ArgumentParser
import Bus
import Foundation
import Geo
import Incidents
import Streams
import VigilProtocol

struct CamerasCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cameras",
        abstract: "Select, import and export cameras offline (a registry file or a data folder); update and retire an owner's cameras on the bus.",
        subcommands: [Select.self, Import.self, Export.self, Update.self, Retire.self])

    struct Select: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Select cameras around a point, seeing a point, in an area or along a route.",
            discussion: """
                Answers are ranked by distance, then camera id (along a route: by distance along it). \
                --batch FILE.jsonl reads one query per line (see docs/protocol.md, "Selection queries") \
                and writes one answer per line.
                """)

        @Option(parsing: .unconditional, help: "A position LAT,LON: with --radius, or with --nearest.")
        var near: String?
        @Option(parsing: .unconditional, help: "Radius in metres around --near.")
        var radius: Double?
        @Option(help: "The K cameras nearest --near.")
        var nearest: Int?
        @Option(parsing: .unconditional, help: "With --nearest: the farthest a camera may be, in metres.")
        var maxDistance: Double?
        @Option(parsing: .unconditional, help: "The cameras whose field of view contains LAT,LON.")
        var sees: String?
        @Option(help: "A GeoJSON file with a Polygon or MultiPolygon (geometry, feature or collection).")
        var area: String?
        @Option(help: "A GeoJSON file with a LineString route.")
        var route: String?
        @Option(parsing: .unconditional, help: "With --route: the corridor width in metres.")
        var width: Double?
        @Option(parsing: .unconditional, help: "With --route: the march head, LAT,LON (snapped onto the route) or a distance along it in metres.")
        var head: String?
        @Option(parsing: .unconditional, help: "With --route and --head: the march tail, LAT,LON or metres along the route.")
        var tail: String?
        @Option(help: "With --head: a GeoJSON road network for the side streets (default: the region's major roads).")
        var roads: String?
        @Option(help: "With --area or --route: which feature of a FeatureCollection (from 0).")
        var feature = 0
        @Option(help: "A file of JSON queries, one per line; answers are written one per line.")
        var batch: String?

        @Option(help: "Keep only cameras of this owner (repeatable).")
        var owner: [String] = []
        @Option(help: "Keep only cameras of this kind (repeatable).")
        var kind: [CameraKind] = []
        @Option(help: "Keep only cameras with this tag (repeatable; all must match).")
        var tag: [String] = []
        @Option(help: "At most this many cameras (the first of the ranking).")
        var limit: Int?

        @Flag(help: "Print JSON instead of text.")
        var json = false

        @Flag(help: """
            Ask the running server of --data over the bus (cameras.select), as --agency or --user: only the cameras \
            that agency may watch without an incident, confidential ones without a position and at a distance rounded \
            up to 500 m. Without it, the registry is read on this host.
            """)
        var overBus = false
        @Option(help: "With --over-bus: the agency to act as; its secret certificate is read from DATA/keys/agencies (default: crisis-centre).")
        var agency: String?
        @Option(help: "With --over-bus: act as this named user instead of the agency (DATA/keys/users).")
        var user: String?
        @Option(help: "With --over-bus: seconds to wait for each answer (default 5).")
        var timeout: Double?

        @OptionGroup var registry: RegistryOptions

        func validate() throws {
            if overBus {
                guard registry.registry == nil, head == nil, tail == nil, roads == nil else {
                    throw ValidationError("--over-bus asks the server of --data: not with --registry, nor --head, --tail or --roads (a march window reads the registry on this host)")
                }
            } else if agency != nil || user != nil || timeout != nil {
                throw ValidationError("--agency, --user and --timeout go with --over-bus")
            }
        }

        func run() throws {
            try reportingFailures(json: json) {
                if overBus {
                    try runOverBus()
                    return
                }
                let index = try registry.index()
                if let batch {
                    try runBatch(batch) { query, line in SelectionAnswer(matches: try index.select(query), line: line) }
                    return
                }
                if head != nil || tail != nil {
                    try runMarchWindow(index: index)
                    return
                }
                let matches = try index.select(try singleQuery())
                if json {
                    FileHandle.standardOutput.write(try BusProtocol.encoder.encode(SelectionAnswer(matches: matches)) + Data("\n".utf8))
                } else {
                    printTable(matches.map { ($0.camera.id, $0.camera.owner, $0.distanceMeters, true, $0.reason, $0.alongMeters) })
                }
            }
        }

        /// The same queries answered by the server, with its rules on what the agency may see.
        private func runOverBus() throws {
            var arguments = ["--data", registry.data ?? "vigil-data", "--agency", agency ?? "crisis-centre"]
            if let user { arguments += ["--user", user] }
            if let timeout { arguments += ["--timeout", "\(timeout)"] }
            let client = try ClientOptions.parse(arguments)
            // The query is checked here first, as on this host: a bad one never leaves.
            let query = batch == nil ? try singleQuery() : nil
            let bus = try client.connect()
            defer { bus.close() }
            func ask(_ query: SelectionQuery) throws(BusClientError) -> [SelectedCamera] {
                try bus.request(.camerasSelect, body: query, as: CameraSelectionResult.self, timeout: client.requestTimeout).cameras
            }
            if let batch {
                try runBatch(batch) { query, line in
                    do {
                        return SelectionAnswer(try ask(query), line: line)
                    } catch BusClientError.remote(let remote) {
                        return SelectionAnswer(error: remote, line: line)
                    } catch {
                        return try client.call { throw error }  // not the query's fault: the batch stops
                    }
                }
                return
            }
            guard let query else { return }
            let cameras = try client.call { try ask(query) }
            if json {
                FileHandle.standardOutput.write(try BusProtocol.encoder.encode(SelectionAnswer(cameras)) + Data("\n".utf8))
            } else {
                printTable(cameras.map { ($0.id, $0.owner, $0.distanceMeters, $0.position != nil, $0.reason, $0.alongMeters) })
            }
        }

        /// One row a camera: id, owner, distance (`≤` when only its 500 m step is known), why.
        private func printTable(_ rows: [(id: String, owner: String, meters: Double, exact: Bool, reason: String, along: Double?)]) {
            print("\(rows.count) camera\(rows.count == 1 ? "" : "s")")
            TextTable.print(rows.map { row in
                let along = row.along.map { String(format: "  at %.0f m along", $0) } ?? ""
                return [row.id, row.owner, (row.exact ? " " : "≤") + String(format: "%8.1f m  ", row.meters) + row.reason + along]
            }, indent: "  ")
        }

        private var filter: SelectionFilter? {
            owner.isEmpty && kind.isEmpty && tag.isEmpty && limit == nil
                ? nil
                : SelectionFilter(owners: owner.isEmpty ? nil : owner, kinds: kind.isEmpty ? nil : kind, tags: tag.isEmpty ? nil : tag, limit: limit)
        }

        private func point(_ text: String, _ option: String) throws -> GeoPoint {
            do {
                return try GeoPoint(parsing: text, field: option)
            } catch {
                throw CommandFailure(passing: error.code, message: "\(option): \(error.message)")
            }
        }

        private func singleQuery() throws -> SelectionQuery {
            let chosen = [near != nil && radius != nil, nearest != nil, sees != nil, area != nil, route != nil].filter { $0 }.count
            guard chosen == 1 else {
                throw ValidationError("give exactly one of --near with --radius, --nearest with --near, --sees, --area, --route, or --batch")
            }
            if let nearest {
                guard let near else { throw ValidationError("--nearest needs --near LAT,LON") }
                return SelectionQuery(type: .nearest, at: try point(near, "--near"), count: nearest, maxMeters: maxDistance, filter: filter)
            }
            if let near, let radius {
                return SelectionQuery(type: .radius, at: try point(near, "--near"), meters: radius, filter: filter)
            }
            if let sees {
                return SelectionQuery(type: .sees, at: try point(sees, "--sees"), filter: filter)
            }
            if let area {
                return SelectionQuery(type: .area, geometry: try GeoJSONGeometry.read(contentsOf: area, feature: feature), filter: filter)
            }
            guard let route, let width else { throw ValidationError("--route needs --width METRES") }
            return SelectionQuery(type: .route, geometry: try GeoJSONGeometry.read(contentsOf: route, feature: feature), widthMeters: width, filter: filter)
        }

        /// The march window for one head and tail position on the route.
        private func runMarchWindow(index: CameraIndex) throws {
            guard let route, let head, let tail else { throw ValidationError("--head and --tail go together, with --route") }
            var configuration = MarchConfiguration()
            if let width { configuration.corridorWidthMeters = width }
            configuration.limit = limit
            let network = try roads.map { try RoadNetwork(contentsOf: URL(fileURLWithPath: $0), projection: index.projection) }
                ?? registry.region.roadNetwork(fixtures: try Deployment.fixturesFolder(registry.fixtures), projection: index.projection)
            var tracker = try MarchTracker(
                index: index, route: try GeoJSONGeometry.read(contentsOf: route, feature: feature), roads: network, configuration: configuration)
            let update = try tracker.update(head: try MarchArgument.position(head, "--head"), tail: try MarchArgument.position(tail, "--tail"), at: Date())
            if json {
                FileHandle.standardOutput.write(try BusProtocol.encoder.encode(MarchAnswer(update)) + Data("\n".utf8))
                return
            }
            print(String(format: "head %.0f m, tail %.0f m of %.0f m%@; %d cameras",
                         update.headMeters, update.tailMeters, update.routeLengthMeters,
                         update.onRoute ? "" : String(format: " (head %.0f m off the route)", update.headOffsetMeters), update.cameras.count))
            TextTable.print(update.cameras.map { camera in
                let along = camera.alongMeters.map { String(format: "%6.0f m along", $0) } ?? "             "
                return [camera.section.rawValue, camera.camera.id, "\(along)  " + String(format: "%6.1f m", camera.distanceMeters)]
            }, indent: "  ")
        }

        /// One answer line per query line (`select`'s answer to it); a bad line gets an error line
        /// and the batch goes on.
        private func runBatch<Camera: Encodable>(_ path: String, select: (SelectionQuery, Int) throws -> SelectionAnswer<Camera>) throws {
            guard let input = FileHandle(forReadingAtPath: path) else {
                throw CommandFailure(.batchUnreadable, message: "cannot read \(path)")
            }
            let output = FileHandle.standardOutput
            var buffer = Data()
            var lineNumber = 0
            func answer(_ line: Data) throws {
                lineNumber += 1
                guard !line.isEmpty else { return }
                let result: Data
                do {
                    let query = try BusProtocol.decoder.decode(SelectionQuery.self, from: line)
                    result = try BusProtocol.encoder.encode(try select(query, lineNumber))
                } catch let error as GeoError {
                    result = try BusProtocol.encoder.encode(SelectionAnswer<Camera>(error: error, line: lineNumber))
                } catch let error as DecodingError {
                    let problem = GeoError(.queryInvalid, message: "not a selection query: \(error)", field: nil)
                    result = try BusProtocol.encoder.encode(SelectionAnswer<Camera>(error: problem, line: lineNumber))
                }
                output.write(result + Data("\n".utf8))
            }
            while case let chunk = input.readData(ofLength: 1 << 20), !chunk.isEmpty {
                buffer.append(chunk)
                while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    try answer(buffer[buffer.startIndex..<newline])
                    buffer.removeSubrange(buffer.startIndex...newline)
                }
            }
            if !buffer.isEmpty { try answer(buffer) }
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import cameras from a GeoJSON or CSV file into a data folder, all or nothing.",
            discussion: "Every bad feature or row is reported with its index or line and the reason; then nothing is imported.")

        @Argument(help: "The file (.geojson or .csv).")
        var file: String

        @Option(help: "The data folder whose database receives the cameras.")
        var data = "vigil-data"

        @Flag(help: "Print JSON for scripts instead of text; errors (every problem of the file) as JSON too.")
        var json = false

        func run() throws {
            try reportingFailures(json: json) {
                let url = URL(fileURLWithPath: file)
                let (cameras, problems) = try RegistryOptions.read(url, admittedIn: try RegistryOptions.projection(ofDataFolder: data))
                guard problems.isEmpty else { throw RegistryProblems(file: file, problems: problems) }
                let database = try RegistryOptions.database(inDataFolder: data)
                let storeProblems = try RegistryStore(database: database).importCameras(cameras) { RegistryOptions.field(of: $0, in: url) }
                guard storeProblems.isEmpty else { throw RegistryProblems(file: file, problems: storeProblems) }
                if json {
                    FileHandle.standardOutput.write(try BusProtocol.encoder.encode(["imported": cameras.count]) + Data("\n".utf8))
                } else {
                    print("imported \(cameras.count) cameras into \(database.path); send SIGHUP to a running server to use them")
                }
            }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export a data folder's cameras as RFC 7946 GeoJSON.",
            discussion: "Stream URLs are exported without their credentials (user information and password-like query values).")

        @Option(help: "The data folder.")
        var data = "vigil-data"

        @Option(name: .shortAndLong, help: "The output file, or - for standard output.")
        var output = "-"

        func run() throws {
            try reportingFailures {
                let cameras = try RegistryOptions.cameras(inDataFolder: data)
                let encoded = try CameraRegistryFile.encode(cameras.map { $0.withStream(StreamCredentials.redacted($0.stream)) })
                if output == "-" {
                    FileHandle.standardOutput.write(encoded + Data("\n".utf8))
                } else {
                    try encoded.write(to: URL(fileURLWithPath: output), options: .atomic)
                }
            }
        }
    }
}

extension CamerasCommand {
    struct Update: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change cameras of the owner you act as, from a GeoJSON or CSV file of their new versions (audited).",
            discussion: """
                Each camera of the file replaces the registered camera with its id; the file is checked as an import is. \
                The running server uses the new versions at once. Act as the owner's agency or one of its owner-admin users.
                """)

        @Argument(help: "The file (.geojson or .csv) with the new versions.")
        var file: String
        @OptionGroup var client: ClientOptions

        func run() throws {
            try reportingFailures(json: client.json) {
                let (cameras, problems) = try RegistryOptions.read(URL(fileURLWithPath: file))
                guard problems.isEmpty else { throw RegistryProblems(file: file, problems: problems) }
                let updated = try client.request(.cameraUpdate, body: CameraRegistryFile.Document(cameras), as: [String: [String]].self)
                if client.json { try client.printJSON(updated) } else { print("updated \(updated["cameras"]?.count ?? 0) cameras") }
            }
        }
    }

    struct Retire: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Retire cameras of the owner you act as: they leave every selection, view and grant at once (audited).")

        @Argument(help: "The camera ids.")
        var cameras: [String]
        @Option(help: "Why (recorded in the audit log).")
        var reason: String
        @OptionGroup var client: ClientOptions

        func run() throws {
            try reportingFailures(json: client.json) {
                let retired = try client.request(.cameraRetire, body: CameraRetireBody(cameras: cameras, reason: reason), as: [String: [String]].self)
                if client.json { try client.printJSON(retired) } else { print("retired \(retired["cameras"]?.joined(separator: ", ") ?? "")") }
            }
        }
    }
}

/// One selection answer as `--json` and `--batch` print it.
/// One selection answer as `--json` and `--batch` print it: the cameras as this host's registry
/// has them (``SelectionEntry``), or as the server answered (`--over-bus`: ``SelectedCamera``).
struct SelectionAnswer<Camera: Encodable>: Encodable {
    var line: Int?
    var cameras: [Camera]?
    var error: BusProtocol.ErrorBody?

    init(_ cameras: [Camera], line: Int? = nil) {
        (self.line, self.cameras) = (line, cameras)
    }

    init(error: GeoError, line: Int) {
        self.init(error: BusProtocol.ErrorBody(code: error.code, message: error.message, field: error.field), line: line)
    }

    init(error: BusProtocol.ErrorBody, line: Int) {
        (self.line, self.error) = (line, error)
    }
}

/// A camera a selection on this host found.
struct SelectionEntry: Encodable {
    var id: String
    var owner: String
    var kind: CameraKind
    var distanceMeters: Double
    var reason: String
    var alongMeters: Double?
}

extension SelectionAnswer where Camera == SelectionEntry {
    init(matches: [CameraMatch], line: Int? = nil) {
        self.init(matches.map {
            SelectionEntry(id: $0.camera.id, owner: $0.camera.owner, kind: $0.camera.kind, distanceMeters: $0.distanceMeters,
                           reason: $0.reason, alongMeters: $0.alongMeters)
        }, line: line)
    }
}

/// Parses a march position given on the command line: LAT,LON, or metres along the route.
enum MarchArgument {
    static func position(_ text: String, _ option: String) throws -> MarchPosition {
        if !text.contains(","), let metres = Double(text) { return .measure(metres) }
        do {
            return .point(try GeoPoint(parsing: text, field: option))
        } catch {
            throw CommandFailure(passing: error.code, message: "\(option): expected LAT,LON or metres along the route; \(error.message)")
        }
    }
}

/// A march window as `--json` prints it.
struct MarchAnswer: Encodable {
    struct Entry: Encodable {
        var id: String
        var owner: String
        var section: MarchSection
        var alongMeters: Double?
        var distanceMeters: Double
    }

    var headMeters: Double
    var tailMeters: Double
    var routeLengthMeters: Double
    var onRoute: Bool
    var headOffsetMeters: Double
    var events: [String]
    var cameras: [Entry]

    init(_ update: MarchUpdate) {
        headMeters = update.headMeters
        tailMeters = update.tailMeters
        routeLengthMeters = update.routeLengthMeters
        onRoute = update.onRoute
        headOffsetMeters = update.headOffsetMeters
        events = update.events
        cameras = update.cameras.map {
            Entry(id: $0.camera.id, owner: $0.camera.owner, section: $0.section, alongMeters: $0.alongMeters, distanceMeters: $0.distanceMeters)
        }
    }
}

extension CameraKind: ExpressibleByArgument {}
