import ArgumentParser
import Bus
import Foundation
import VigilProtocol

struct ConsoleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console",
        abstract: "The operator console in a browser: log in to it.",
        subcommands: [Login.self])

    struct Login: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a one-time code that logs you in to the console, as yourself (--user).",
            discussion: """
                Asks the server over CURVE, with your own key, for a code the console's login page takes once, \
                within two minutes. The session it opens is yours: it ends when your clearance does, after a \
                12-hour shift, when you log out, or when you are suspended. Everything you do in the console is \
                decided and audited as if you did it here, marked as coming from the console.
                """)

        @OptionGroup var client: ClientOptions

        func validate() throws {
            guard client.user != nil else { throw ValidationError("the console is for named users: pass --user YOUR_ID") }
        }

        func run() throws {
            try reportingFailures(json: client.json) {
                let issued = try client.request(.consoleCode, body: [String: String](), as: ConsoleCodeResult.self)
                let address = (try? client.serverInfo())?.console
                if client.json {
                    try client.printJSON(LoginCode(code: issued.code, console: address, expiresInS: issued.expiresInS, sessionEndsAt: issued.sessionEndsAt))
                    return
                }
                print(issued.code)
                let log = FileHandle.standardError
                log.write(Data("""
                    Open \(address ?? "the console (this server runs none: --console-port -1)") and enter the code above \
                    within \(issued.expiresInS) s. Your session ends at \(issued.sessionEndsAt.formatted(.iso8601)) at the latest.

                    """.utf8))
            }
        }

        private struct LoginCode: Encodable {
            let code: String
            let console: String?
            let expiresInS: Int
            let sessionEndsAt: Date
        }
    }
}
