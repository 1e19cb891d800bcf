import ArgumentParser
import Console
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

    /// The console's basemap: the region's open data from the fixtures, and what its licences ask to be shown.
    func basemap(fixtures: URL) -> (layers: [ConsoleServer.BasemapLayer], attributions: [String], view: (latitude: Double, longitude: Double, zoom: Int)) {
        let sources = fixtures.appendingPathComponent("sources")
        func layer(_ name: String, _ file: String, _ style: String) -> ConsoleServer.BasemapLayer {
            ConsoleServer.BasemapLayer(name: name, file: sources.appendingPathComponent(file), style: style)
        }
        switch self {
        case .brussels:
            return ([
                layer("communes", "brussels_communes.geojson", "area"), layer("police-zones", "brussels_police_zones.geojson", "area"),
                layer("roads", "brussels_roads_major_osm2013.geojson", "road"), layer("metro", "stib_metro_lines_osm.geojson", "line"),
                layer("stations", "stib_metro_premetro_stations.geojson", "station"),
            ], [
                "Communes, police zones: Statbel open data", "Roads, metro lines: © OpenStreetMap contributors, ODbL 1.0",
                "Stations: Source: STIB-MIVB Open Data",
            ], (50.8467, 4.3525, 13))
        case .marseille:
            return ([layer("arrondissements", "marseille_arrondissements.geojson", "area")],
                    ["Source: IGN – ADMIN EXPRESS COG 2022, Licence Ouverte Etalab 2.0"], (43.2965, 5.3698, 12))
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
