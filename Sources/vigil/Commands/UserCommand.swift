import ArgumentParser
import Bus
import Foundation
import Incidents
import VigilProtocol

struct UserCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user",
        abstract: "Named users: add one to your agency (with its own CURVE certificate), list, suspend, reinstate or remove them.",
        subcommands: [Add.self, List.self, Suspend.self, Reinstate.self, Remove.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a named user to the agency you act as; their certificate is written to DATA/keys/users/ID.key[_secret].",
            discussion: """
                The key pair is made here and only the public key is sent; hand the secret certificate to the user. \
                Act as the agency itself or as one of its owner-admin users.
                """)

        @Argument(help: "The user id (a-z, 0-9, '.', '_', '-'; for example cc.dupont).")
        var id: String
        @Option(help: "The user's full name.")
        var name: String
        @Option(help: "The badge number.")
        var badge: String
        @Option(name: .customLong("role"), help: "A role: \(UserRole.allCases.map(\.rawValue).joined(separator: ", ")) (repeatable).")
        var roles: [String]
        @Option(help: "When the user's clearance expires, ISO 8601 (for example 2027-06-30T00:00:00Z).")
        var clearanceUntil: String?
        @OptionGroup var client: ClientOptions

        func validate() throws {
            guard UserDirectory.isValidId(id) else { throw ValidationError("'\(id)' is not a user id") }
            for role in roles where UserRole(rawValue: role) == nil {
                throw ValidationError("--role \(role): use \(UserRole.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            if let clearanceUntil, (try? Date(clearanceUntil, strategy: .iso8601)) == nil {
                throw ValidationError("--clearance-until \(clearanceUntil) is not an ISO 8601 time")
            }
        }

        func run() throws {
            try reportingFailures(json: client.json) {
                let folder = DataFolder(path: client.data)
                guard !FileManager.default.fileExists(atPath: folder.userCertificate(id, secret: true).path) else {
                    throw CommandFailure(.userExists, message: "\(folder.userCertificate(id, secret: true).path) exists already")
                }
                let keys: CurveKeyPair
                do {
                    keys = try CurveKeyPair.generate()
                } catch {
                    throw CommandFailure(.keyGenerationFailed, message: "\(error)")
                }
                let user = User(
                    id: id, agency: client.agency, name: name, badge: badge, roles: roles.compactMap(UserRole.init(rawValue:)),
                    clearanceExpires: clearanceUntil.flatMap { try? Date($0, strategy: .iso8601) }, publicKey: keys.publicKey)
                let added = try client.request(.userAdd, body: user, as: User.self)
                do {
                    try CurveCertificate.write(keys, name: id, to: folder.userKeys)
                } catch {
                    throw CommandFailure(.certificateUnwritable, message: "\(id) was added but its certificate could not be written: \(error)")
                }
                if client.json {
                    try client.printJSON(added)
                } else {
                    print("User \(added.id) (\(added.name), badge \(added.badge)) added to \(added.agency) as \(added.roles.map(\.rawValue).joined(separator: ", ")); "
                        + "certificate \(folder.userCertificate(id, secret: true).path)")
                }
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The named users of the agency you act as.")

        @OptionGroup var client: ClientOptions

        func run() throws {
            try reportingFailures(json: client.json) {
                let users = try client.request(.userList, body: [String: String](), as: [User].self)
                if client.json {
                    try client.printJSON(users)
                    return
                }
                TextTable.print(users.map { user in
                    [user.id, user.badge, user.roles.map(\.rawValue).joined(separator: ","), user.status.rawValue,
                     user.name + (user.clearanceExpires.map { " (clearance until \($0.formatted(.iso8601)))" } ?? "")]
                })
            }
        }
    }

    struct Suspend: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Suspend a user of your agency: their key is refused at once, their subscriptions and open views end (audited).")
        @OptionGroup var change: StatusChange
        func run() throws { try change.apply(.userSuspend, done: "suspended") }
    }

    struct Reinstate: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Let a suspended user of your agency act again (audited).")
        @OptionGroup var change: StatusChange
        func run() throws { try change.apply(.userReinstate, done: "reinstated") }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a user of your agency for good: as a suspension, and the key is forgotten (audited).")
        @OptionGroup var change: StatusChange
        func run() throws { try change.apply(.userRemove, done: "removed") }
    }

    /// What suspending, reinstating and removing share: the user, the reason, who asks.
    struct StatusChange: ParsableArguments {
        @Argument(help: "The user id.")
        var id: String
        @Option(help: "Why (recorded in the audit log).")
        var reason: String
        @OptionGroup var client: ClientOptions

        func apply(_ operation: ProtocolOperation, done: String) throws {
            try reportingFailures(json: client.json) {
                let user = try client.request(operation, body: UserStatusBody(user: id, reason: reason), as: User.self)
                if client.json {
                    try client.printJSON(user)
                } else {
                    print("User \(user.id) of \(user.agency) \(done).")
                }
            }
        }
    }
}
