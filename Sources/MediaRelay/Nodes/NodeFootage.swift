import Foundation
import Streams
import Synchronization
import VigilProtocol

/// A relay node's footage: it records the cameras the coordinator names in its replies, into
/// its own folder, and tells the coordinator (which keeps the catalog) of every segment it
/// closed and every file it removed, with its next report. Nothing is lost when a report fails:
/// what was not acknowledged goes with the next one; when the node starts, every segment in
/// its folder is reported again (the catalog keeps one row per relay and file).
public final class NodeFootage: Sendable {
    public let directory: URL
    private struct Pending {
        var segments: [RecordedSegment] = []
        var removed: [String] = []
        /// What the folder holds, by camera, in time order: what a playback here reads.
        var held: [String: [RecordedSegment]] = [:]

        mutating func hold(_ segment: RecordedSegment) {
            held[segment.camera, default: []].append(segment)
            held[segment.camera]!.sort { $0.start < $1.start }
        }
    }

    private let pending = Mutex(Pending())

    public init(directory: URL) {
        self.directory = directory
    }

    /// The recorder's settings for the node's relay (playback is served by the coordinator).
    public func settings(segmentSeconds: TimeInterval) -> FootageSettings {
        var recorder = FootageRecorder.Configuration(directory: directory)
        recorder.segmentSeconds = segmentSeconds
        return FootageSettings(
            recorder: recorder, localRelay: "node",
            library: { [self] camera, moment in
                let held = pending.withLock { $0.held[camera] ?? [] }
                return .here(held.filter { $0.end > moment }.map { FootagePlayer.Item(segment: $0, url: directory.appendingPathComponent($0.file)) })
            },
            onSegment: { [self] segment, _, _ in
                pending.withLock { pending in
                    pending.segments.append(segment)
                    pending.hold(segment)
                }
            },
            onFailure: { _, _ in })
    }

    /// Every segment already in the folder, to report (the node's first report after a start).
    public func reportFolder() {
        let found = RecordedSegment.files(in: directory).compactMap { file -> RecordedSegment? in
            guard let (camera, start) = RecordedSegment.parse(file: file) else { return nil }
            return try? RecordedSegment.scan(directory.appendingPathComponent(file), camera: camera, file: file, start: start)
        }
        pending.withLock { pending in
            pending.segments = found + pending.segments
            found.forEach { pending.hold($0) }
        }
    }

    /// What the next report carries (at most a report's worth of segments); call ``acknowledged(_:)`` once it is answered.
    func take() -> (segments: [RecordedSegment], removed: [String]) {
        pending.withLock { (Array($0.segments.prefix(RelayReportBody.maximumSegments)), $0.removed) }
    }

    /// The coordinator answered a report that carried `sent`.
    func acknowledged(_ sent: (segments: [RecordedSegment], removed: [String])) {
        pending.withLock { pending in
            pending.segments.removeFirst(min(sent.segments.count, pending.segments.count))
            pending.removed.removeAll { sent.removed.contains($0) }
        }
    }

    /// Removes the files the coordinator deleted; they are confirmed with the next report.
    func remove(_ files: [String]) {
        var removed: [String] = []
        for file in files where RecordedSegment.staysInFolder(file) {
            let url = directory.appendingPathComponent(file)
            try? FileManager.default.removeItem(at: url)
            if !FileManager.default.fileExists(atPath: url.path) { removed.append(file) }
        }
        pending.withLock { pending in
            pending.removed.append(contentsOf: removed)
            for file in removed {
                if let camera = RecordedSegment.parse(file: file)?.camera { pending.held[camera]?.removeAll { $0.file == file } }
            }
        }
    }
}
