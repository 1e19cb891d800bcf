import Incidents
import Streams

/// The catalog's row of a segment and the recorder's own description of it: the same fields,
/// in two modules that do not know each other (the catalog adds the relay and the incidents).
extension FootageSegment {
    init(_ segment: RecordedSegment, relay: String, incidents: [Int64]) {
        self.init(
            camera: segment.camera, relay: relay, file: segment.file, start: segment.start, end: segment.end, bytes: segment.bytes,
            keyframes: segment.keyframes, incidents: incidents)
    }

    /// What a player reads of it.
    var recorded: RecordedSegment {
        RecordedSegment(camera: camera, file: file, start: start, end: end, bytes: bytes, keyframes: keyframes)
    }
}
