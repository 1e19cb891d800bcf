import ArgumentParser
import Foundation

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure Vigil's figures and print each beside its target (build with -c release).",
        subcommands: [Geo.self])

    struct Geo: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The geospatial engine: selections on the Brussels fixture, and a generated 1,000,000-camera registry beside shapely.")

        @Option(help: "Queries per figure.")
        var queries = 10_000

        @Option(help: "Cameras in the generated registry.")
        var cameras = 1_000_000

        @Option(help: "The Python with shapely, for the reference figures.")
        var python = "/usr/bin/python3"

        @Option(help: "The fixtures folder (default: ./fixtures, else the checkout's).")
        var fixtures: String?

        func validate() throws {
            guard (100...1_000_000).contains(queries) else { throw ValidationError("--queries must be 100 to 1000000") }
            guard (1_000...5_000_000).contains(cameras) else { throw ValidationError("--cameras must be 1000 to 5000000") }
        }

        func run() throws {
            try GeoBenchmark(fixtures: try Deployment.fixturesFolder(fixtures), queries: queries, largeCount: cameras, python: python).run()
        }
    }
}
