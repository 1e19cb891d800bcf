import ArgumentParser
import Foundation
import Geo

/// A region Vigil is deployed for: its camera registry fixture and its metric CRS.
enum Deployment: String, ExpressibleByArgument, CaseIterable {
    case brussels, marseille

    var crs: MetricCRS {
        switch self {
        case .brussels: .belgianLambert2008
        case .marseille: .lambert93
        }
    }

    /// The road network the march window takes its side streets from (Brussels: the major roads of 2013 OSM).
    func roadNetwork(fixtures: URL, projection: Projection) throws -> RoadNetwork? {
        switch self {
        case .brussels:
            try RoadNetwork(contentsOf: fixtures.appendingPathComponent("sources/brussels_roads_major_osm2013.geojson"), projection: projection)
        case .marseille:
            nil
        }
    }

    /// The fixtures folder: `--fixtures`, else `./fixtures`, else the one of the checkout the binary was built in.
    static func fixturesFolder(_ explicit: String?) throws -> URL {
        if let explicit { return URL(fileURLWithPath: explicit) }
        let candidates = [
            URL(fileURLWithPath: "fixtures"),
            URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
                .deletingLastPathComponent().appendingPathComponent("../../../fixtures").standardizedFileURL,
        ]
        guard let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0.appendingPathComponent("agencies.json").path) }) else {
            throw ValidationError("no fixtures folder found (looked in ./fixtures and beside the binary); pass --fixtures DIR")
        }
        return found
    }
}
