import Foundation
import Geo

/// Places the Brussels camera registry on the real geometry of `fixtures/sources`, in the
/// proportions of the brief: STIB cameras at the metro and premetro stations and along the
/// metro lines, police-zone street cameras along major roads and at squares (denser in the
/// centre), road-authority cameras every 100 to 150 m in the road tunnels, and the cameras
/// mapped in OpenStreetMap. The same seed and sources give the same cameras.
public struct BrusselsRegistryGenerator {
    public static let grandPlace = try! GeoPoint(lat: 50.8467, lon: 4.3525)
    /// How many street cameras the police zones get (about 1,500 in the brief, plus squares).
    static let streetCameraCount = 1_800

    let sources: SourceData
    let geometry: MetricGeometry
    var random: SeededRandom
    private let zones: [(code: String, area: Area)]

    public init(sources: SourceData, seed: UInt64) throws {
        self.sources = sources
        geometry = MetricGeometry(projection: try Projection(crs: .belgianLambert2008))
        random = SeededRandom(seed: seed)
        zones = try sources.features("brussels_police_zones.geojson").map { feature in
            let code = feature.string("police_zone_code") ?? "?"
            return (code, try Area(name: code, geoJSONGeometry: try feature.geometryJSON()))
        }
    }

    public mutating func generate() throws -> [Camera] {
        let stations = try stationCameras()
        let tunnels = try metroTunnelCameras(stations: stations.centres)
        let street = try streetCameras()
        let roadTunnels = try roadTunnelCameras()
        let mapped = try mappedCameras()
        return stations.cameras + tunnels + street + roadTunnels + mapped
    }

    /// The police zone (`pz-5339`, …) whose territory contains `point`, if any.
    private func zoneOwner(_ point: GeoPoint) -> String? {
        zones.first { $0.area.contains(point) }.map { "pz-\($0.code)" }
    }

    // MARK: STIB stations

    /// Cameras on every platform (spread along it, looking both ways), in the halls, and at the accesses.
    private mutating func stationCameras() throws -> (cameras: [Camera], centres: [GeoPoint]) {
        var platforms: [String: GeoPoint] = [:]
        for row in try sources.csvRows("stib_stops.csv") {
            if let id = row["stop_id"], let lat = row["lat"].flatMap(Double.init), let lon = row["lon"].flatMap(Double.init) {
                platforms[id] = try GeoPoint(lat: lat, lon: lon)
            }
        }
        let stations = try sources.features("stib_metro_premetro_stations.geojson")
            .sorted { ($0.string("name_fr") ?? "") < ($1.string("name_fr") ?? "") }
        var cameras: [Camera] = []
        var centres: [GeoPoint] = []
        for station in stations {
            guard let centre = try station.point(), let name = station.string("name_fr") else { continue }
            centres.append(centre)
            let prefix = "stib-\(CameraFactory.slug(name))"
            let tags = ["station:\(CameraFactory.slug(name))", station.string("station_type") ?? "metro"]
            var number = 0
            func nextID() -> String {
                number += 1
                return "\(prefix)-\(String(format: "%02d", number))"
            }
            let platformIDs = (station.properties["platform_stop_ids"] as? [String] ?? []).sorted()
            for platformID in platformIDs {
                guard let platform = platforms[platformID] else { continue }
                let axis = random.uniform(0...180)
                for step in 0..<9 {
                    let along = Double(step - 4) * 11 + random.uniform(-2...2)
                    let position = try geometry.offset(platform, distance: along, bearing: axis)
                    cameras.append(try CameraFactory.make(
                        id: nextID(), owner: "stib", kind: .metro, placeType: "platform", position: position,
                        heading: axis + (step.isMultiple(of: 2) ? 0 : 180), fieldOfView: random.uniform(60...80),
                        range: random.uniform(40...70), tags: tags + ["platform:\(platformID)"]))
                }
            }
            for _ in 0..<random.integer(3...5) {
                let position = try geometry.offset(centre, distance: random.uniform(0...25), bearing: random.uniform(0...360))
                cameras.append(try CameraFactory.make(
                    id: nextID(), owner: "stib", kind: .metro, placeType: "hall", position: position,
                    heading: nil, fieldOfView: nil, range: random.uniform(25...40), tags: tags))
            }
            for _ in 0..<random.integer(6...10) {
                let bearing = random.uniform(0...360)
                let position = try geometry.offset(centre, distance: random.uniform(50...130), bearing: bearing)
                cameras.append(try CameraFactory.make(
                    id: nextID(), owner: "stib", kind: .metro, placeType: "access", position: position,
                    heading: bearing + 180, fieldOfView: random.uniform(70...90), range: random.uniform(30...50), tags: tags))
            }
        }
        return (cameras, centres)
    }

    /// Cameras every 90 to 110 m along the metro lines inside 5 km of the Grand-Place (the
    /// underground part of the network; the surface ends outside are left without), except
    /// within 150 m of a station, whose own cameras cover it.
    private mutating func metroTunnelCameras(stations: [GeoPoint]) throws -> [Camera] {
        var seenLines = Set<String>()
        var occupied = Set<GridCell>()
        var cameras: [Camera] = []
        let lines = try sources.features("stib_metro_lines_osm.geojson")
        for line in lines {
            guard let ref = line.string("ref"), seenLines.insert(ref).inserted else { continue }
            var number = 0
            for part in try line.lines() {
                var random = self.random
                let samples = try geometry.samples(along: part, start: random.uniform(0...50)) { random.uniform(90...110) }
                self.random = random
                for sample in samples {
                    guard try geometry.distance(sample.point, Self.grandPlace) <= 5_000,
                          try stations.allSatisfy({ try geometry.distance($0, sample.point) > 150 }),
                          occupied.insert(try GridCell(sample.point, size: 60, projection: geometry.projection)).inserted
                    else { continue }
                    number += 1
                    cameras.append(try CameraFactory.make(
                        id: "stib-line\(ref)-tunnel-\(String(format: "%03d", number))", owner: "stib", kind: .metro,
                        placeType: "metro-tunnel", position: sample.point, heading: sample.bearing,
                        fieldOfView: 45, range: 120, tags: ["line:\(ref)"]))
                }
            }
        }
        return cameras
    }

    // MARK: Street cameras of the police zones

    /// Weighted sampling without replacement over points along the major roads and at squares,
    /// weighted by closeness to the centre, so the centre is denser.
    private mutating func streetCameras() throws -> [Camera] {
        struct Candidate {
            var point: GeoPoint
            var bearing: Double?
            var weight: Double
            var placeType: String
        }
        var candidates: [Candidate] = []
        var occupied = Set<GridCell>()
        let roadClasses: Set<String> = ["trunk", "primary", "secondary", "tertiary"]
        for road in try sources.features("brussels_roads_major_osm2013.geojson") {
            guard road.properties["in_region"] as? Bool == true else { continue }
            let name = road.string("name_fr") ?? ""
            let isSquare = name.hasPrefix("Place ") || name.hasPrefix("Square ") || name.hasPrefix("Rond-point")
                || road.string("junction") == "roundabout"
            for part in try road.lines() where !part.isEmpty {
                if isSquare {
                    let lat = part.map(\.lat).reduce(0, +) / Double(part.count)
                    let lon = part.map(\.lon).reduce(0, +) / Double(part.count)
                    let centre = try GeoPoint(lat: lat, lon: lon)
                    guard occupied.insert(try GridCell(centre, size: 40, projection: geometry.projection)).inserted else { continue }
                    let distance = try geometry.distance(centre, Self.grandPlace)
                    candidates.append(Candidate(point: centre, bearing: nil, weight: 3 * exp(-distance / 2_500), placeType: "square"))
                } else if roadClasses.contains(road.string("highway") ?? "") {
                    for sample in try geometry.samples(along: part, start: 20, spacing: { 40 }) {
                        guard occupied.insert(try GridCell(sample.point, size: 40, projection: geometry.projection)).inserted else { continue }
                        let distance = try geometry.distance(sample.point, Self.grandPlace)
                        candidates.append(Candidate(point: sample.point, bearing: sample.bearing, weight: exp(-distance / 2_000), placeType: "road"))
                    }
                }
            }
        }
        // Efraimidis–Spirakis: key u^(1/w); the largest keys form a weighted sample without replacement.
        var keyed: [(key: Double, candidate: Candidate)] = []
        for candidate in candidates {
            let u = random.uniform(Double.ulpOfOne...1)
            keyed.append((log(u) / candidate.weight, candidate))
        }
        var chosen: [(owner: String, candidate: Candidate)] = []
        for entry in keyed.sorted(by: { $0.key > $1.key }) {
            guard chosen.count < Self.streetCameraCount else { break }
            guard let owner = zoneOwner(entry.candidate.point) else { continue }
            chosen.append((owner, entry.candidate))
        }
        chosen.sort { ($0.owner, $0.candidate.point.lat, $0.candidate.point.lon) < ($1.owner, $1.candidate.point.lat, $1.candidate.point.lon) }
        var numbers: [String: Int] = [:]
        return try chosen.map { owner, candidate in
            numbers[owner, default: 0] += 1
            let id = "\(owner.replacingOccurrences(of: "-", with: ""))-street-\(String(format: "%04d", numbers[owner]!))"
            if let bearing = candidate.bearing {
                return try CameraFactory.make(
                    id: id, owner: owner, kind: .street, placeType: candidate.placeType, position: candidate.point,
                    heading: bearing + (random.integer(0...1) == 0 ? 0 : 180) + random.uniform(-20...20),
                    fieldOfView: random.uniform(55...95), range: random.uniform(60...150))
            }
            return try CameraFactory.make(
                id: id, owner: owner, kind: .street, placeType: candidate.placeType, position: candidate.point,
                heading: nil, fieldOfView: nil, range: 120, tags: ["ptz"])
        }
    }

    // MARK: Road tunnels

    /// Bruxelles Mobilité cameras every 100 to 150 m along each tunnel way, looking with the traffic.
    private mutating func roadTunnelCameras() throws -> [Camera] {
        var cameras: [Camera] = []
        for tunnel in try sources.features("brussels_road_tunnels_osm2013.geojson") {
            guard let osmID = tunnel.string("osm_id") else { continue }
            var number = 0
            for part in try tunnel.lines() {
                var random = self.random
                let samples = try geometry.samples(along: part, start: random.uniform(10...60)) { random.uniform(100...150) }
                self.random = random
                for sample in samples {
                    number += 1
                    cameras.append(try CameraFactory.make(
                        id: "brumob-\(osmID)-\(String(format: "%02d", number))", owner: "bruxelles-mobilite", kind: .tunnel,
                        placeType: "road-tunnel", position: sample.point, heading: sample.bearing,
                        fieldOfView: 40, range: 150, tags: ["tunnel-cluster:\(tunnel.string("tunnel_cluster") ?? "?")"]))
                }
            }
        }
        return cameras
    }

    // MARK: Cameras mapped in OpenStreetMap

    /// The real mapped surveillance and speed cameras, owned by the police zone they stand in.
    private mutating func mappedCameras() throws -> [Camera] {
        var cameras: [Camera] = []
        for (index, feature) in try sources.features("brussels_cameras_osm.geojson").enumerated() {
            guard let position = try feature.point(), let owner = zoneOwner(position) else { continue }
            let speed = feature.string("camera_kind") == "speed_camera"
            let heading = feature.string("camera_direction").flatMap(Double.init)
            let id = "osm-" + (feature.string("osm_id") ?? "unnamed-\(index)")
            cameras.append(try CameraFactory.make(
                id: id, owner: owner, kind: speed ? .speed : .street, placeType: speed ? "road" : "mapped",
                position: position, heading: heading, fieldOfView: heading == nil ? nil : 60, range: speed ? 60 : 80,
                tags: ["osm"]))
        }
        return cameras
    }
}

/// A square cell of a metric grid, to keep generated cameras apart.
struct GridCell: Hashable {
    let column: Int
    let row: Int

    init(_ point: GeoPoint, size: Double, projection: Projection) throws {
        let metric = try projection.metric(point)
        column = Int((metric.x / size).rounded(.down))
        row = Int((metric.y / size).rounded(.down))
    }
}
