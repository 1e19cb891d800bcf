import ArgumentParser
import Bus
import Crypto
import Foundation
import Incidents
import VigilProtocol

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Evidence exports of recorded footage: make a signed package, or check one offline.",
        subcommands: [Create.self, Fetch.self, Verify.self],
        defaultSubcommand: Create.self)

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export a camera's footage over a range as an evidence package (originals, viewing copy, signed manifest).",
            discussion: """
                A disclosure: act as a named user (--user) whose grant allows export for that footage, give the \
                reason and a text, and either an evidence hold that covers the camera over the whole range (--hold) \
                or a legal reference. The server writes the package under its data folder's exports/ and prints \
                where; -o fetches it over the bus into a folder here (from any host). Check it with `vigil export verify`.
                """)

        @Option(help: "The incident the footage is evidence for.")
        var incident: Int64
        @Option(help: "The camera id.")
        var camera: String
        @Option(help: "The start of the footage, ISO 8601 UTC.")
        var from: String
        @Option(help: "The end of the footage, ISO 8601 UTC.")
        var to: String
        @Option(help: "The reason: \(ReasonCode.allCases.map(\.rawValue).joined(separator: ", ")).")
        var reason: String
        @Option(help: "Why, in words (5 to 1,000 characters).")
        var text: String
        @Option(help: "Who receives the package (a prosecutor, a court).")
        var recipient: String?
        @Option(help: "The evidence hold that covers the camera over the whole range.")
        var hold: Int64?
        @Option(help: "Without a hold: the legal reference the export is made under.")
        var legalReference: String?
        @Option(help: "The prosecutor's decision reference, for police footage older than a month.")
        var prosecutorReference: String?
        @Flag(help: "Only the originals and the manifest, no viewing copy.")
        var noViewingCopy = false
        @Option(name: .shortAndLong, help: "A folder to fetch the package into, over the bus (it must not exist yet).")
        var output: String?
        @OptionGroup var client: ClientOptions

        func validate() throws {
            for (name, value) in [("--from", from), ("--to", to)] where WatchCommand.moment(value) == nil {
                throw ValidationError("\(name) '\(value)' is not an ISO 8601 time (for example 2026-11-22T14:00:00Z)")
            }
            if let output, FileManager.default.fileExists(atPath: output) { throw ValidationError("-o \(output) exists already") }
        }

        func run() throws {
            try reportingFailures(json: client.json) {
                let body = FootageExportBody(
                    camera: camera, from: WatchCommand.moment(from)!, to: WatchCommand.moment(to)!,
                    justification: WireJustification(reason: reason, text: text, incident: incident), recipient: recipient, hold: hold,
                    legalReference: legalReference, prosecutorReference: prosecutorReference, viewingCopy: !noViewingCopy)
                let bus = try client.connect()
                defer { bus.close() }
                // The viewing copy is re-encoded: minutes for hours of footage.
                let result = try client.call {
                    try bus.request(.footageExport, body: body, as: FootageExportResult.self, timeout: .seconds(max(600, client.timeout ?? 0)))
                }
                if let output {
                    try Fetch.fetch(result.export, files: result.files.map(\.path), into: output, bus: bus, client: client)
                }
                if client.json {
                    try client.printJSON(result)
                    return
                }
                print("Evidence package \(result.export): \(output ?? result.path)")
                for file in result.files { print("  \(file.path)  \(file.bytes) bytes  sha256 \(file.sha256)") }
                print("  manifest.json sha256 \(result.manifestSha256), signed by \(result.serverKey)")
            }
        }
    }

    struct Fetch: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fetch an evidence package over the bus into a folder here (footage.package): the agency and user that made it only.",
            discussion: "Every file the signed manifest lists, piece by piece; check the folder with `vigil export verify`.")

        @Argument(help: "The package's id (E…, as `vigil export` printed it).")
        var export: String
        @Option(name: .shortAndLong, help: "The folder to write it into (it must not exist yet).")
        var output: String
        @OptionGroup var client: ClientOptions

        func validate() throws {
            if FileManager.default.fileExists(atPath: output) { throw ValidationError("-o \(output) exists already") }
        }

        func run() throws {
            try reportingFailures(json: client.json) {
                let bus = try client.connect()
                defer { bus.close() }
                // The manifest says what else there is (what it lists is checked by `export verify`, not trusted here).
                let manifest = try Self.read(export, file: EvidencePackage.manifestName, bus: bus, client: client)
                guard let listed = try? BusProtocol.decoder.decode(EvidenceManifest.self, from: manifest) else {
                    throw CommandFailure(.badReply, message: "the package's manifest cannot be read")
                }
                try Self.fetch(export, files: listed.files.map(\.path), into: output, bus: bus, client: client)
                print("Evidence package \(export): \(output) (\(listed.files.count) files and the signed manifest)")
            }
        }

        /// Writes the package's manifest, its signature and `files` into the new folder `output`.
        static func fetch(_ export: String, files: [String], into output: String, bus: BusClient, client: ClientOptions) throws {
            let folder = URL(fileURLWithPath: output)
            for file in [EvidencePackage.manifestName, EvidencePackage.signatureName] + files {
                // The server names only the files its manifest lists; none may leave the folder here either.
                guard !file.hasPrefix("/"), !file.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }) else {
                    throw CommandFailure(.badReply, message: "the package names a file outside its folder: \(file)")
                }
                let handle = try newOutputFile(folder.appendingPathComponent(file), makingFolder: true)
                defer { try? handle.close() }
                try read(export, file: file, bus: bus, client: client) { try handle.write(contentsOf: $0) }
            }
        }

        /// One file of the package, piece by piece, each handed to `take` (a 10-minute export is hundreds of MiB).
        static func read(_ export: String, file: String, bus: BusClient, client: ClientOptions, into take: (Data) throws -> Void) throws {
            var offset = 0
            while true {
                let piece = try client.call {
                    try bus.request(.footagePackage, body: FootagePackageBody(export: export, file: file, offset: offset), as: FootagePackageResult.self)
                }
                try take(piece.data)
                offset += piece.data.count
                guard offset < piece.size, !piece.data.isEmpty else { return }
            }
        }

        static func read(_ export: String, file: String, bus: BusClient, client: ClientOptions) throws -> Data {
            var bytes = Data()
            try read(export, file: file, bus: bus, client: client) { bytes += $0 }
            return bytes
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check an evidence package offline: the manifest's signature, every file's SHA-256, nothing added.",
            discussion: "Needs only the package and the server's public key (--public-key, or the one in --data's keys/audit.ed25519). Exit 1 if anything differs.")

        @Argument(help: "The package's folder.")
        var package: String
        @Option(help: "The server's Ed25519 public key (base64), as `vigil serve` printed it (audit_key).")
        var publicKey: String?
        @Option(help: "A data folder whose server's key to use instead.")
        var data = "vigil-data"
        @Flag(help: "Print the verified manifest as JSON.")
        var json = false

        func run() throws {
            try reportingFailures(json: json) {
                let text = try publicKey ?? DataFolder(path: data).auditPublicKey()
                guard let raw = Data(base64Encoded: text), let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw) else {
                    throw CommandFailure(.keyMissing, message: "the public key is not an Ed25519 key in base64")
                }
                let manifest = try EvidencePackage.verify(URL(fileURLWithPath: package), publicKey: key)
                if json {
                    FileHandle.standardOutput.write(try BusProtocol.encoder.encode(manifest) + Data("\n".utf8))
                    return
                }
                print("evidence package \(manifest.export) verified: \(manifest.files.count) files, camera \(manifest.camera), "
                    + "\(manifest.footageFrom.formatted(.iso8601)) to \(manifest.footageTo.formatted(.iso8601)), incident \(manifest.incident), "
                    + "exported by \(manifest.user) (\(manifest.agency))")
            }
        }
    }
}
