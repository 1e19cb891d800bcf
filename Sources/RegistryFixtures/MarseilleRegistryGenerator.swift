import Foundation
import Geo

/// Places the Marseille landlord's estates: ten social-housing estates in the northern
/// districts (13th to 16th arrondissements), 4 to 6 cameras each, locations confidential.
/// The estates' real positions are secret, so they are drawn at random inside the districts.
public struct MarseilleRegistryGenerator {
    static let owner = "marseille-landlord"
    static let northernDistricts = [13, 14, 15, 16]

    let sources: SourceData
    let geometry: MetricGeometry
    var random: SeededRandom

    public init(sources: SourceData, seed: UInt64) throws {
        self.sources = sources
        geometry = MetricGeometry(projection: try Projection(crs: .lambert93))
        random = SeededRandom(seed: seed)
    }

    public mutating func generate() throws -> [Camera] {
        var districts: [Int: Area] = [:]
        for feature in try sources.features("marseille_arrondissements.geojson") {
            guard let number = feature.string("arrondissement").flatMap(Int.init), Self.northernDistricts.contains(number) else { continue }
            districts[number] = try Area(name: "\(number)", geoJSONGeometry: try feature.geometryJSON())
        }
        var cameras: [Camera] = []
        for estate in 1...10 {
            let district = Self.northernDistricts[(estate - 1) % Self.northernDistricts.count]
            guard let area = districts[district] else { throw FixtureError("district \(district) missing from the sources") }
            let centre = try randomPoint(in: area)
            let estateID = "estate-\(String(format: "%02d", estate))"
            for number in 1...random.integer(4...6) {
                let bearing = random.uniform(0...360)
                let position = try geometry.offset(centre, distance: random.uniform(15...70), bearing: bearing)
                cameras.append(try CameraFactory.make(
                    id: "\(estateID)-cam-\(number)", owner: Self.owner, kind: .estate, placeType: "estate",
                    position: position, heading: bearing + 180, fieldOfView: random.uniform(80...100),
                    range: random.uniform(40...60), confidentiality: .confidential,
                    tags: ["estate:\(estateID)", "arrondissement:\(district)"]))
            }
        }
        return cameras
    }

    /// Rejection sampling in the area's bounding box.
    private mutating func randomPoint(in area: Area) throws -> GeoPoint {
        for _ in 0..<10_000 {
            let candidate = try GeoPoint(
                lat: random.uniform(area.bounds.minLat...area.bounds.maxLat),
                lon: random.uniform(area.bounds.minLon...area.bounds.maxLon))
            if area.contains(candidate) { return candidate }
        }
        throw FixtureError("no point found inside \(area.name)")
    }
}
