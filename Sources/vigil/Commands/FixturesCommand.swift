import ArgumentParser
import Foundation
import Geo
import RegistryFixtures

struct FixturesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fixtures",
        abstract: "Work with the camera registry fixtures.",
        subcommands: [Generate.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Regenerate the Brussels and Marseille camera registries from the real source data.",
            discussion: "Deterministic: the same sources and seed give the same bytes.")

        @Option(help: "Folder with the source data (copies of shared/data).")
        var sources = "fixtures/sources"

        @Option(help: "Folder to write brussels/cameras.geojson and marseille/cameras.geojson into.")
        var output = "fixtures"

        @Option(help: "Seed of the placement.")
        var seed: UInt64 = 2019

        func run() throws {
            let sourceData = SourceData(directory: URL(fileURLWithPath: sources))
            var brussels = try BrusselsRegistryGenerator(sources: sourceData, seed: seed)
            var marseille = try MarseilleRegistryGenerator(sources: sourceData, seed: seed)
            let attribution = "© OpenStreetMap contributors, ODbL 1.0; Source: Statistics Belgium (Statbel), open data; "
                + "Source: STIB-MIVB Open Data"
            try write(try brussels.generate(), region: "brussels", metadata: [
                "attribution": attribution,
                "license": "ODbL 1.0 (derived database; see fixtures/sources/SOURCES.md)",
                "generator": "vigil fixtures generate --seed \(seed)",
                "crs": MetricCRS.belgianLambert2008.rawValue,
            ])
            try write(try marseille.generate(), region: "marseille", metadata: [
                "attribution": "Source: IGN – ADMIN EXPRESS COG 2022, Licence Ouverte Etalab 2.0",
                "license": "Etalab 2.0 for the district geometry; estate positions are synthetic",
                "generator": "vigil fixtures generate --seed \(seed)",
                "crs": MetricCRS.lambert93.rawValue,
            ])
        }

        private func write(_ cameras: [Camera], region: String, metadata: [String: String]) throws {
            let folder = URL(fileURLWithPath: output).appendingPathComponent(region)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try CameraRegistryFile.encode(cameras, metadata: metadata).write(to: folder.appendingPathComponent("cameras.geojson"))
            let byOwner = Dictionary(grouping: cameras, by: \.owner).mapValues(\.count).sorted { $0.key < $1.key }
            print("\(region): \(cameras.count) cameras " + byOwner.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        }
    }
}
