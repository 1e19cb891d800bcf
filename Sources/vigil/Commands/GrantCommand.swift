import ArgumentParser
import Bus
import Foundation
import Incidents
import VigilProtocol

struct GrantCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grant",
        abstract: "Owners' sharing grants: list, create, revoke, and check what a grant allows.",
        subcommands: [List.self, Create.self, Revoke.self, Check.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The grants your agency gives and receives.")

        @OptionGroup var client: ClientOptions

        func run() throws {
            try reportingFailures(json: client.json) {
                let grants = try client.request(.grantList, body: [String: String](), as: [Grant].self)
                if client.json {
                    try client.printJSON(grants)
                    return
                }
                TextTable.print(grants.map { grant in
                    let scope = [grant.scope.kinds.map { "kinds " + $0.map(\.rawValue).joined(separator: "/") }, grant.scope.areaName,
                                 grant.scope.tag.map { "tag " + $0 }, grant.scope.cameras.map { "\($0.count) cameras" }].compactMap { $0 }
                    let condition: String = switch grant.condition {
                    case .always: "always"
                    case .whileIncidentOpen(let kinds, let selected):
                        "during an open \(kinds?.map(\.rawValue).joined(separator: "/") ?? "") incident\(selected ? ", its cameras only" : "")"
                    case .incident(let id): "for incident \(id)"
                    }
                    return [grant.id, "\(grant.owner) → \(grant.agency): "
                        + "\(grant.modes.map(\.rawValue).joined(separator: ",")) on \(scope.isEmpty ? "all cameras" : scope.joined(separator: ", ")), "
                        + "\(condition)\(grant.limits == nil ? "" : " within limits")\(grant.revokedAt == nil ? "" : " [revoked]")"]
                })
            }
        }
    }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a grant from a JSON file (see docs/protocol.md, grant.create); you must be its owner.")

        @Argument(help: "The grant as JSON.")
        var file: String

        @OptionGroup var client: ClientOptions

        func run() throws {
            try reportingFailures(json: client.json) {
                guard let data = FileManager.default.contents(atPath: file) else {
                    throw CommandFailure(.grantUnreadable, message: "cannot read \(file)")
                }
                let grant: Grant
                do {
                    grant = try BusProtocol.decoder.decode(Grant.self, from: data)
                } catch {
                    throw CommandFailure(.grantInvalid, message: "\(file) is not a grant: \(error)")
                }
                let created = try client.request(.grantCreate, body: grant, as: Grant.self)
                print("grant \(created.id) created: \(created.owner) → \(created.agency)")
            }
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke one of your agency's grants from now on.")

        @Argument(help: "The grant id.")
        var grant: String

        @Option(help: "Why (kept in the audit log).")
        var reason: String

        @OptionGroup var client: ClientOptions

        func run() throws {
            try reportingFailures(json: client.json) {
                _ = try client.request(.grantRevoke, body: RevokeGrantBody(grant: grant, reason: reason), as: [String: String].self)
                print("grant \(grant) revoked")
            }
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Ask the decision function whether your agency may use a camera.")

        @Option(help: "The camera id.")
        var camera: String

        @Option(help: "live, playback, export or ptz.")
        var mode: AccessMode = .live

        @Option(help: "The incident the access is for.")
        var incident: Int64?

        @OptionGroup var client: ClientOptions

        func run() throws {
            try reportingFailures(json: client.json) {
                let result = try client.request(
                    .accessCheck, body: AccessCheckBody(camera: camera, mode: mode, incident: incident), as: AccessCheckResult.self)
                if client.json {
                    try client.printJSON(result)
                } else if result.allowed {
                    print("allowed under \(result.grant ?? "?")")
                } else {
                    print("denied: \(result.code ?? "?"): \(result.message ?? "")")
                }
                if !result.allowed { throw ExitCode(3) }
            }
        }
    }
}

extension AccessMode: ExpressibleByArgument {}
