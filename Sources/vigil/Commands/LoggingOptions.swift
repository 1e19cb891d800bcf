import ArgumentParser
import Logging

/// `--log-level` and `--log-format` for the long-running commands (`serve`, `relay`); logs go to stderr.
struct LoggingOptions: ParsableArguments {
    enum Format: String, ExpressibleByArgument, CaseIterable {
        /// swift-log's own lines, for a person at a terminal.
        case text
        /// One JSON object per line (see `JSONLogHandler`), for journald and log shippers.
        case json
    }

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    @Option(help: "Log lines as text, or as one JSON object per line (json) for journald and log shippers.")
    var logFormat = Format.text

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level '\(logLevel)'") }
    }

    func bootstrap() {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        let format = logFormat
        LoggingSystem.bootstrap { label in
            switch format {
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            case .json:
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }
}
