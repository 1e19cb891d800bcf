import ArgumentParser
import Foundation
import Geo
import ClusterLink
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
        let index = try CameraIndex(admitting: try cameras(), projection: try Projection(crs: region.crs))
        for refusal in index.refused {
            FileHandle.standardError.write(Data("camera \(refusal.camera) left out: \(refusal.problem)\n".utf8))
        }
        return index
    }

    /// The registry of a data folder's database.
    static func cameras(inDataFolder data: String) throws -> [Camera] {
        try RegistryStore(database: try database(inDataFolder: data)).cameras()
    }

    /// The database of an existing data folder (never creates one); a cluster coordinator's
    /// folder: the cluster's database, through its leader.
    static func database(inDataFolder data: String) throws -> Database {
        let folder = DataFolder(path: data)
        if FileManager.default.fileExists(atPath: folder.raft.path) {
            let members = (try? folder.runningServer().cluster?.members) ?? nil
            guard let members else {
                throw CommandFailure(.serverNotRunning, message: "\(data) is a cluster coordinator's folder: start its `vigil serve --cluster` first")
            }
            // The members are reached as a member reaches them: over TLS, with the folder's cluster key.
            let link = try ClusterLink(serverKeys: try folder.serverKeys())
            guard let leader = ReplicatedNode.leader(askingAny: members, through: link) else {
                throw CommandFailure(.serverNotRunning, message: "no member of the cluster (\(members.joined(separator: ", "))) knows a leader")
            }
            return try Database(replicatedAt: leader.address, through: link)
        }
        guard FileManager.default.fileExists(atPath: folder.database.path) else {
            throw CommandFailure(.dataMissing, message: "no database at \(folder.database.path); start `vigil serve --data \(data)` once first")
        }
        return try folder.openDatabase()
    }

    /// Reads and checks a GeoJSON or CSV registry file, listing every problem; with a
    /// projection, also what a server of that region needs (``CameraAdmission``).
    static func read(_ file: URL, admittedIn projection: Projection? = nil) throws -> (cameras: [Camera], problems: [GeoError]) {
        guard let data = try? Data(contentsOf: file) else {
            throw CommandFailure(.registryUnreadable, message: "cannot read \(file.path)")
        }
        var (cameras, problems) = file.pathExtension.lowercased() == "csv"
            ? try CameraRegistryCSV.validate(String(decoding: data, as: UTF8.self))
            : try CameraRegistryFile.validate(data)
        if let projection {
            for (index, camera) in cameras.enumerated() {
                if let problem = CameraAdmission.problem(of: camera, projection: projection, field: field(of: index, in: file)) {
                    problems.append(problem)
                }
            }
        }
        return (cameras, problems)
    }

    /// How a problem names the `index`th camera of a registry file.
    static func field(of index: Int, in file: URL) -> String {
        file.pathExtension.lowercased() == "csv" ? "camera \(index + 1) of the file" : "features[\(index)]"
    }

    /// The metric projection of the region a data folder serves (Brussels when it records none).
    static func projection(ofDataFolder data: String) throws -> Projection {
        try Projection(crs: (try DataFolder(path: data).recordedRegion() ?? .brussels).crs)
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
