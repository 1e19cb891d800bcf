import ArgumentParser
import Foundation
import Geo
import Incidents

/// Where offline camera commands read the registry: a data folder's database, or a file.
struct RegistryOptions: ParsableArguments {
    @Option(help: "A registry file (.geojson or .csv); default: the region's fixture.")
    var registry: String?

    @Option(help: "Read the registry from this data folder's database instead of a file.")
    var data: String?

    @Option(help: "The deployment region, which sets the metric CRS: \(Deployment.allCases.map(\.rawValue).joined(separator: ", ")).")
    var region: Deployment = .brussels

    @Option(help: "The fixtures folder (default: ./fixtures, else the checkout's).")
    var fixtures: String?

    func validate() throws {
        if registry != nil && data != nil { throw ValidationError("give --registry or --data, not both") }
    }

    func cameras() throws -> [Camera] {
        if let data { return try Self.cameras(inDataFolder: data) }
        let file = try registry.map { URL(fileURLWithPath: $0) }
            ?? Deployment.fixturesFolder(fixtures).appendingPathComponent(region.rawValue).appendingPathComponent("cameras.geojson")
        let (cameras, problems) = try Self.read(file)
        if !problems.isEmpty { throw RegistryProblems(file: file.path, problems: problems) }
        return cameras
    }

    func index() throws -> CameraIndex {
        try CameraIndex(cameras: try cameras(), projection: try Projection(crs: region.crs))
    }

    /// The registry of a data folder's database.
    static func cameras(inDataFolder data: String) throws -> [Camera] {
        try RegistryStore(database: try database(inDataFolder: data)).cameras()
    }

    /// The database of an existing data folder (never creates one).
    static func database(inDataFolder data: String) throws -> Database {
        let database = DataFolder(path: data).database
        guard FileManager.default.fileExists(atPath: database.path) else {
            throw CommandFailure(code: "data_missing", message: "no database at \(database.path); start `vigil serve --data \(data)` once first")
        }
        return try Database(path: database.path)
    }

    /// Reads and checks a GeoJSON or CSV registry file, listing every problem.
    static func read(_ file: URL) throws -> (cameras: [Camera], problems: [GeoError]) {
        guard let data = try? Data(contentsOf: file) else {
            throw CommandFailure(code: "registry_unreadable", message: "cannot read \(file.path)")
        }
        if file.pathExtension.lowercased() == "csv" {
            return try CameraRegistryCSV.validate(String(decoding: data, as: UTF8.self))
        }
        return try CameraRegistryFile.validate(data)
    }
}

/// Every problem of a registry file, reported together.
struct RegistryProblems: Error, CustomStringConvertible {
    let file: String
    let problems: [GeoError]

    var description: String {
        "registry_invalid: \(problems.count) problem\(problems.count == 1 ? "" : "s") in \(file), nothing imported:\n"
            + problems.prefix(100).map { "  \($0)" }.joined(separator: "\n")
            + (problems.count > 100 ? "\n  … and \(problems.count - 100) more" : "")
    }
}
