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

    /// A segment file read back (a crash left it outside the catalog, or a tool cut it): its
    /// keyframes and span from its own timestamps, the start given.
    public static func scan(_ url: URL, camera: String, file: String, start: Date) throws(MediaError) -> RecordedSegment {
        let source = try StreamSource(url: url.path)
        defer { source.close() }
        let timeBase = Double(source.video.timeBase.numerator) / Double(max(1, source.video.timeBase.denominator))
        var keyframes: [Double] = []
        var (first, last): (Int64?, Int64) = (nil, 0)
        while let packet = try source.read() {
            guard let dts = packet.dts ?? packet.pts else { continue }
            let origin = first ?? dts
            first = origin
            if packet.isKeyframe { keyframes.append(Double(dts - origin) * timeBase) }
            last = max(last, dts + packet.duration)
        }
        guard let first, !keyframes.isEmpty else { throw MediaError(.recordingFailed, message: "\(file) holds no keyframe") }
        let bytes = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? nil
        return RecordedSegment(
            camera: camera, file: file, start: start, end: start.addingTimeInterval(Double(last - first) * timeBase), bytes: bytes ?? 0,
            keyframes: keyframes.map { $0 - keyframes[0] })
    }

    /// The segment files under `directory` (paths relative to it, sorted).
    public static func files(in directory: URL) -> [String] {
        (FileManager.default.enumerator(atPath: directory.path)?.compactMap { $0 as? String } ?? []).filter { $0.hasSuffix(".ts") }.sorted()
    }

    /// Whether a segment's path (as a relay or a coordinator names it) stays inside the footage
    /// folder: relative, with no `..`.
    public static func staysInFolder(_ file: String) -> Bool {
        !file.hasPrefix("/") && !file.split(separator: "/").contains("..")
    }

    /// The camera and start a segment's file name says (see ``file(camera:start:)``), or nil.
    public static func parse(file: String) -> (camera: String, start: Date)? {
        let parts = file.split(separator: "/")
        guard parts.count == 2, parts[1].hasSuffix(".ts"), let camera = String(parts[0]).removingPercentEncoding,
              let milliseconds = Int64(parts[1].dropLast(3).prefix { $0.isNumber })
        else { return nil }
        return (camera, Date(timeIntervalSince1970: Double(milliseconds) / 1000))
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
