import Foundation
import Testing
import TestSupport
@testable import Streams

/// A camera whose owner registered privacy masks: its live video leaves the relay with the masks
/// black in every picture, its keyframes where the camera put them, its timestamps its own.
@Suite("Privacy masks on live video")
struct PrivacyMaskTests {
    let folder: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-masks-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    static let leftHalf: Thumbnailer.Mask = [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]

    /// Every packet of `source`, and its parameter sets and size at the end.
    private func readAll(_ source: any PacketSource) throws -> [MediaPacket] {
        var packets: [MediaPacket] = []
        while let packet = try source.read() { packets.append(packet) }
        return packets
    }

    /// The mean luma of `columns` in each picture of a raw grey dump of `width`×`height` pictures.
    private func means(_ pixels: [UInt8], width: Int, height: Int, columns: Range<Int>) -> [Double] {
        stride(from: 0, to: pixels.count - width * height + 1, by: width * height).map { start in
            var sum = 0
            for row in 0..<height {
                for column in columns { sum += Int(pixels[start + row * width + column]) }
            }
            return Double(sum) / Double(height * columns.count)
        }
    }

    @Test func everyPictureHasItsMaskBlackAndTheCamerasKeyframesAndTimestampsAreKept() throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        // Three seconds of a moving test pattern, a keyframe a second, B-frames (reordered on decoding).
        let camera = folder.appendingPathComponent("camera.ts").path
        try ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-t", "3", "-c:v", "libx264", "-g", "25", "-bf", "2",
                    "-pix_fmt", "yuv420p", "-f", "mpegts", camera])
        let original = try readAll(try StreamSource(url: camera))

        let masked = try PrivacyMaskedSource(try StreamSource(url: camera), masks: [Self.leftHalf])
        #expect(masked.video.codec == .h264 && masked.video.width == 640 && masked.video.height == 360)
        let packets = try readAll(masked)
        masked.close()
        #expect(packets.count == original.count, "a picture out for each picture in: \(packets.count) of \(original.count)")
        #expect(Set(packets.compactMap(\.pts)) == Set(original.compactMap(\.pts)), "each picture keeps its timestamp")
        let keyframes = { (packets: [MediaPacket]) in packets.filter(\.isKeyframe).compactMap(\.pts).sorted() }
        #expect(keyframes(packets) == keyframes(original), "a keyframe where the camera had one")
        #expect(!masked.parameterSets.isEmpty)
        for keyframe in packets where keyframe.isKeyframe {
            #expect(!AnnexB.parameterSets(keyframe.data, codec: .h264).isEmpty, "every keyframe carries its parameter sets")
        }
        #expect(zip(packets, packets.dropFirst()).allSatisfy { ($0.dts ?? 0) < ($1.dts ?? 0) }, "in decoding order, no picture held back")

        // Decoded by ffmpeg: in every picture the left half is black and the pattern shows on the right.
        let elementary = folder.appendingPathComponent("masked.h264")
        try Data(packets.map(\.data).joined()).write(to: elementary)
        let pixels = try greyPixels(elementary.path)
        #expect(pixels.count == 640 * 360 * original.count, "every picture decodes: \(pixels.count / (640 * 360)) of \(original.count)")
        let left = means(pixels, width: 640, height: 360, columns: 0..<312)
        let right = means(pixels, width: 640, height: 360, columns: 328..<640)
        #expect(left.allSatisfy { $0 < 4 }, "the mask hides the left half of every picture: \(left.max() ?? -1)")
        #expect(right.allSatisfy { $0 > 40 }, "the picture shows on the right: \(right.min() ?? -1)")
        // The original's left half is not black: the mask, not the pattern, made it so.
        let unmasked = folder.appendingPathComponent("original.h264")
        try Data(original.map(\.data).joined()).write(to: unmasked)
        #expect(means(try greyPixels(unmasked.path), width: 640, height: 360, columns: 0..<312).allSatisfy { $0 > 40 })
    }

    @Test func aCameraThatChangesItsSizeIsMaskedAtEachSizeWithNewParameterSets() throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        // Two GOPs at 320×240, then two at 640×360.
        let stream = try makeResizingStream(in: folder)
        let masked = try PrivacyMaskedSource(try StreamSource(url: stream.path), masks: [Self.leftHalf])
        let packets = try readAll(masked)
        masked.close()
        let sizes = packets.filter(\.isKeyframe).compactMap { VideoStreamInfo.dimensions(of: $0.data, codec: .h264) }.map { "\($0.width)x\($0.height)" }
        #expect(sizes.first == "320x240" && sizes.last == "640x360", "\(sizes)")
        // The last keyframe on its own (parameter sets in front) decodes at the new size, masked.
        let last = folder.appendingPathComponent("last.h264")
        try packets.last(where: \.isKeyframe)!.data.write(to: last)
        let pixels = try greyPixels(last.path)
        #expect(pixels.count == 640 * 360)
        #expect(means(pixels, width: 640, height: 360, columns: 0..<312).allSatisfy { $0 < 4 })
    }

    @Test func aSimulatedCameraIsMaskedFromItsFirstKeyframe() throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let masked = try PrivacyMaskedSource(try SimulatedCamera(camera: "sim-1"), masks: [Self.leftHalf])
        defer { masked.close() }
        let first = try #require(try masked.read())
        #expect(first.isKeyframe)
        let file = folder.appendingPathComponent("first.h264")
        try first.data.write(to: file)
        let pixels = try greyPixels(file.path)
        #expect(pixels.count == 320 * 180 && means(pixels, width: 320, height: 180, columns: 0..<152).allSatisfy { $0 < 4 })
    }

    /// A camera that sends garbage in the middle of its stream: the damaged pictures are lost,
    /// the feed goes on, and what comes out is still masked.
    @Test func damagedPacketsLosePicturesNotTheFeed() throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let camera = folder.appendingPathComponent("camera.ts").path
        try ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "2", "-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p", "-f", "mpegts", camera])
        let masked = try PrivacyMaskedSource(Damaging(try StreamSource(url: camera), damaged: 30..<34), masks: [Self.leftHalf])
        let packets = try readAll(masked)
        masked.close()
        #expect(packets.count >= 40, "the pictures after the damage come out: \(packets.count) of 50")
        let file = folder.appendingPathComponent("after.h264")
        // From the second keyframe on (after the damage), every picture decodes and is masked.
        let secondKeyframe = try #require(packets.indices.filter { packets[$0].isKeyframe }.dropFirst().first)
        try Data(packets[secondKeyframe...].map(\.data).joined()).write(to: file)
        let pixels = try greyPixels(file.path)
        #expect(!pixels.isEmpty && means(pixels, width: 320, height: 240, columns: 0..<152).allSatisfy { $0 < 4 })
    }
}

/// A source whose packets `damaged` (by index) are replaced with garbage of the same size.
private final class Damaging: PacketSource {
    private let inner: any PacketSource
    private let damaged: Range<Int>
    private var index = 0
    var video: VideoStreamInfo { inner.video }
    var parameterSets: Data { inner.parameterSets }
    var interruption: StreamSource.Deadline? { inner.interruption }

    init(_ inner: any PacketSource, damaged: Range<Int>) {
        (self.inner, self.damaged) = (inner, damaged)
    }

    func read() throws(MediaError) -> MediaPacket? {
        guard var packet = try inner.read() else { return nil }
        defer { index += 1 }
        if damaged.contains(index) {
            packet.data = Data([0, 0, 1, 0x41] + (4..<packet.data.count).map { UInt8(truncatingIfNeeded: $0 &* 7919) })
        }
        return packet
    }

    func close() { inner.close() }
}
