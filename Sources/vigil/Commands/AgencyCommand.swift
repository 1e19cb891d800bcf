import ArgumentParser
import Bus
import Foundation
import Incidents
import VigilProtocol

struct AgencyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agency",
        abstract: "Your agency's own key.",
        subcommands: [RotateKey.self])

    struct RotateKey: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-key",
            abstract: "Give the agency you act as a new key pair; the old key is refused at once (audited).",
            discussion: """
                The key pair is made here and only the public key is sent. Once the server has it, the new certificate \
                replaces DATA/keys/agencies/AGENCY.key and .key_secret; hand it to the agency's systems. \
                Act as the agency itself or as one of its owner-admin users.
                """)

        @Option(help: "Why (recorded in the audit log).")
        var reason: String
        @OptionGroup var client: ClientOptions

        func run() throws {
            try reportingFailures(json: client.json) {
                let keys: CurveKeyPair
                do {
                    keys = try CurveKeyPair.generate()
                } catch {
                    throw CommandFailure(.keyGenerationFailed, message: "\(error)")
                }
                _ = try client.request(.agencyRotateKey, body: AgencyKeyBody(publicKey: keys.publicKey, reason: reason), as: [String: String].self)
                let folder = DataFolder(path: client.data)
                do {
                    try CurveCertificate.write(keys, name: client.agency, to: folder.agencyKeys)
                } catch {
                    throw CommandFailure(
                        .certificateUnwritable,
                        message: "the server now expects the new key \(keys.publicKey) but its certificate could not be written: \(error)")
                }
                if client.json {
                    try client.printJSON(["agency": client.agency, "public_key": keys.publicKey])
                } else {
                    print("\(client.agency) has a new key \(keys.publicKey); certificate \(folder.agencyCertificate(client.agency, secret: true).path)")
                }
            }
        }
    }
}
