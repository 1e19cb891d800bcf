import Foundation
import Testing
import TestSupport
@testable import Streams

/// A camera reconfigured to another resolution: its in-band parameter sets change, and what new
/// viewers are told (size and parameter sets) follows.
@Suite("Parameters follow the stream")
struct ParameterChangeTests {
    @Test func aResolutionChangeUpdatesTheDescriptionNewViewersGet() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-resize-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        // Two GOPs at 320×240, then two at 640×360, in one MPEG-TS stream (as a camera switching profiles sends it).
        let stream = try makeResizingStream(in: folder)

        let source = try StreamSource(url: stream.path)
        #expect(source.video.width == 320 && source.video.height == 240)
        let firstSets = source.parameterSets
        var sizes: [String] = []
        var lastKeyframe: MediaPacket?
        while let packet = try source.read() {
            if packet.isKeyframe { (sizes, lastKeyframe) = (sizes + ["\(source.video.width)x\(source.video.height)"], packet) }
        }
        // A thumbnail of the last keyframe, made as the relay makes it (from what the source says now).
        let thumbnail = try Thumbnailer.make(
            camera: "resized", keyframe: try #require(lastKeyframe), parameterSets: source.parameterSets, video: source.video, masks: [])
        #expect(thumbnail.width == 320 && thumbnail.height == 180, "16:9 now: \(thumbnail.width)×\(thumbnail.height)")
        #expect(sizes.first == "320x240" && sizes.last == "640x360", "\(sizes)")
        #expect(source.parameterSets != firstSets, "the new parameter sets are kept")
        let description = source.video.description(parameterSets: source.parameterSets)
        #expect(description.width == 640 && description.height == 360)
        #expect(Data(base64Encoded: description.parameterSets) == source.parameterSets)
    }

    @Test func theParserReadsTheSizeAKeyframeDeclares() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-size-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("hd.ts").path
        try ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25", "-t", "1", "-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p", "-f", "mpegts", path])
        let source = try StreamSource(url: path)
        var keyframe: MediaPacket?
        while keyframe == nil, let packet = try source.read() { if packet.isKeyframe { keyframe = packet } }
        let found = try #require(keyframe)
        let size = try #require(VideoStreamInfo.dimensions(of: AnnexB.withParameterSets(source.parameterSets, before: found.data, codec: .h264), codec: .h264))
        #expect(size.width == 1280 && size.height == 720)
        #expect(VideoStreamInfo.dimensions(of: Data(repeating: 0, count: 64), codec: .h264) == nil, "no parameter sets: no size")
    }
}
