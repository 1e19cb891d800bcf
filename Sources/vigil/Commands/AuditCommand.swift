import ArgumentParser
import Foundation
import Incidents

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Verify and export the hash-chained audit log of a data folder (on the server's host), or read it over the bus as an auditor.",
        subcommands: [Verify.self, Export.self, Read.self])

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the whole audit chain; name the first broken entry and exit 1 if there is one.")

        @Option(help: "The data folder.")
        var data = "vigil-data"

        func run() throws {
            try reportingFailures {
                let result = try AuditStore(database: try RegistryOptions.database(inDataFolder: data)).verify()
                guard let broken = result.firstBroken else {
                    print("audit chain intact: \(result.entries) entries")
                    return
                }
                throw CommandFailure(
                    code: "audit_broken",
                    message: "entry \(broken) is broken: \(result.problem ?? "?") (\(result.entries) entries before it are intact)")
            }
        }
    }

    struct Export: ParsableCommand {
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

        func run() throws {
            try reportingFailures {
                let entries = try AuditStore(database: try RegistryOptions.database(inDataFolder: data)).entries(from: from, to: to)
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
            try reportingFailures {
                let bus = try client.connect()
                defer { bus.close() }
                var after: Int64 = 0
                while true {
                    let page = try client.call {
                        try bus.request(
                            "audit.query", body: AuditQueryBody(from: from, to: to, after: after, limit: AuditQueryBody.maximumLimit),
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
