import Foundation

/// One closed file of recorded footage: a camera's packets as they came, from a keyframe, in
/// MPEG-TS (no transcoding), with the index a playback and an export start from.
public struct RecordedSegment: Sendable, Codable, Equatable {
    public var camera: String
    /// The file's path under the recorder's folder (`CAMERA/START.ts`).
    public var file: String
    /// The wall-clock time its first keyframe was received.
    public var start: Date
    /// The wall-clock time its last packet ends.
    public var end: Date
    public var bytes: Int
    /// Each keyframe's time, in seconds after ``start`` (the first is 0).
    public var keyframes: [Double]

    public init(camera: String, file: String, start: Date, end: Date, bytes: Int, keyframes: [Double]) {
        self.camera = camera
        self.file = file
        self.start = start
        self.end = end
        self.bytes = bytes
        self.keyframes = keyframes
    }

    /// The time of the last keyframe at or before `moment` (the segment's start when it is earlier),
    /// with its position among the segment's keyframes.
    public func keyframe(atOrBefore moment: Date) -> (index: Int, at: Date) {
        let offset = moment.timeIntervalSince(start)
        let index = keyframes.lastIndex { $0 <= offset } ?? 0
        return (index, start.addingTimeInterval(keyframes.isEmpty ? 0 : keyframes[index]))
    }

    /// A file name for a camera's segment starting at `start`: the camera id made safe for a
    /// path (anything but letters, digits, `-`, `_` and `.` percent-encoded), and the start in
    /// milliseconds since 1970.
    static func file(camera: String, start: Date) -> String {
        let safe = camera.utf8.map { byte -> String in
            let character = Character(Unicode.Scalar(byte))
            return (character.isASCII && (character.isLetter || character.isNumber)) || "-_".contains(character)
                ? String(character) : String(format: "%%%02X", byte)
        }.joined()
        return "\(safe)/\(Int64((start.timeIntervalSince1970 * 1000).rounded())).ts"
    }
}
