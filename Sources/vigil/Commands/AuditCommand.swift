import ArgumentParser
import Bus
import Foundation
import Incidents
import VigilProtocol

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Verify and export the hash-chained audit log of a data folder (on the server's host), or read it over the bus as an auditor.",
        subcommands: [Verify.self, Export.self, Read.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the whole audit chain; name the first broken entry and exit 1 if there is one.",
            discussion: """
                With --checkpoint, also prove that the log still holds everything each checkpoint in FILE covers \
                (checkpoints as the server published them, one per line, or one JSON object): a log cut short \
                (truncated) or rewritten and re-chained (rewritten) fails, as does a checkpoint signed with another key.
                """)

        @Option(help: "The data folder.")
        var data = "vigil-data"

        @Option(help: "A file of signed checkpoints kept by an auditor or an owner.")
        var checkpoint: String?

        @Flag(help: "Print JSON for scripts instead of text (the chain's state, and each checkpoint's); errors as JSON too.")
        var json = false

        /// What `--json` prints when the chain is intact and every checkpoint holds.
        private struct Verified: Encodable {
            var intact: Bool
            var entries: Int64
            var checkpoints: [CheckpointVerification]
        }

        func run() async throws {
            try await reportingFailures(json: json) {
                let store = AuditStore(database: try RegistryOptions.database(inDataFolder: data))
                var checkpoints: [CheckpointVerification] = []
                if let checkpoint { checkpoints = try await verify(checkpointsIn: checkpoint, store: store) }
                let result = try await store.verify()
                guard let broken = result.firstBroken else {
                    if json {
                        FileHandle.standardOutput.write(try BusProtocol.encoder.encode(Verified(intact: true, entries: result.entries, checkpoints: checkpoints)) + Data("\n".utf8))
                    } else {
                        print("audit chain intact: \(result.entries) entries")
                    }
                    return
                }
                throw CommandFailure(
                    .auditBroken,
                    message: "entry \(broken) is broken: \(result.problem ?? "?") (\(result.entries) entries before it are intact)")
            }
        }

        /// Checks every checkpoint of the file; the first that fails ends the command with its code.
        private func verify(checkpointsIn file: String, store: AuditStore) async throws -> [CheckpointVerification] {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw CommandFailure(.checkpointUnreadable, message: "cannot read \(file)")
            }
            let checkpoints = try AuditCheckpoint.read(text)
            guard !checkpoints.isEmpty else { throw CommandFailure(.checkpointInvalid, message: "\(file) holds no checkpoint") }
            var verified: [CheckpointVerification] = []
            let serverKey = try DataFolder(path: data).auditPublicKey()
            for checkpoint in checkpoints {
                let result = try await store.verify(checkpoint, serverKey: serverKey)
                guard result.holds else {
                    throw CommandFailure(passing: result.code ?? CommandFailureCode.checkpointFailed.rawValue, message: "checkpoint of \(checkpoint.at): \(result.problem ?? "")")
                }
                if !json { print("checkpoint of \(checkpoint.at) holds: the log still has its \(checkpoint.sequence) entries (\(result.entries) now)") }
                verified.append(result)
            }
            return verified
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the audit entries of a period as JSON lines, for the supervisory authority.",
            discussion: "Times are compared as ISO 8601 UTC text (for example 2026-11-22T00:00:00Z); each line has the record and its hashes.")

        @Option(help: "The data folder.")
        var data = "vigil-data"

        @Option(help: "The first time to include, ISO 8601 UTC.")
        var from: String?

        @Option(help: "The last time to include, ISO 8601 UTC.")
        var to: String?

        @Option(name: .shortAndLong, help: "The output file, or - for standard output.")
        var output = "-"

        func validate() throws {
            for (name, value) in [("--from", from), ("--to", to)] {
                guard let value else { continue }
                guard (try? Date(value, strategy: .iso8601)) != nil || (try? Date(value + "T00:00:00Z", strategy: .iso8601)) != nil else {
                    throw ValidationError("\(name) '\(value)' is not an ISO 8601 date or time")
                }
            }
        }

        func run() async throws {
            try await reportingFailures {
                let entries = try await AuditStore(database: try RegistryOptions.database(inDataFolder: data)).entries(from: from, to: to)
                let encoder = JSONEncoder()
                encoder.keyEncodingStrategy = .convertToSnakeCase
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                var text = Data()
                for entry in entries { text += try encoder.encode(entry) + Data("\n".utf8) }
                if output == "-" {
                    FileHandle.standardOutput.write(text)
                } else {
                    try text.write(to: URL(fileURLWithPath: output), options: .atomic)
                }
            }
        }
    }

    struct Read: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read audit entries over the bus as JSON lines; only a named user with the auditor role may (give --user).",
            discussion: "Each read is itself audited. Pages of up to 500 entries are fetched until the end.")

        @Option(help: "The first time to include, ISO 8601 UTC.")
        var from: String?
        @Option(help: "The last time to include, ISO 8601 UTC.")
        var to: String?
        @OptionGroup var client: ClientOptions

        func run() throws {
            try reportingFailures(json: client.json) {
                let bus = try client.connect()
                defer { bus.close() }
                var after: Int64 = 0
                while true {
                    let page = try client.call {
                        try bus.request(
                            .auditQuery, body: AuditQueryBody(from: from, to: to, after: after, limit: AuditQueryBody.maximumLimit),
                            as: AuditQueryResult.self, timeout: client.requestTimeout)
                    }
                    for entry in page.entries { try client.printJSON(entry) }
                    guard let next = page.nextAfter else { break }
                    after = next
                }
            }
        }
    }
}
