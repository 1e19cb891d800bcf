import Foundation
import Logging
import Synchronization

/// `--log-format json`: one JSON object per line on standard error, for journald and log
/// shippers: `time` (RFC 3339, milliseconds, UTC), `level`, `label`, `message`, `source`, and the
/// metadata as string members of `metadata`.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    /// One writer at a time, so that lines never interleave.
    private static let output = Mutex(FileHandle.standardError)
    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    init(label: String) {
        self.label = label
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    private struct Line: Encodable {
        var time: String
        var level: String
        var label: String
        var message: String
        var source: String
        var metadata: [String: String]?
    }

    func log(event: LogEvent) {
        let (level, message, explicit, source) = (event.level, event.message, event.metadata, event.source)
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let explicit { merged.merge(explicit) { $1 } }
        let entry = Line(
            time: Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(Date()),
            level: level.rawValue, label: label, message: message.description, source: source,
            metadata: merged.isEmpty ? nil : merged.mapValues(\.description))
        guard let encoded = try? Self.encoder.encode(entry) else { return }
        Self.output.withLock { $0.write(encoded + Data([0x0A])) }
    }
}
