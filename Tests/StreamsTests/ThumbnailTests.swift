import Foundation
import Synchronization
import Testing
import TestSupport
@testable import Streams

@Suite("Thumbnails")
struct ThumbnailTests {
    let folder: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-thumbs-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    /// The first keyframe of a 640×480 test pattern made by ffmpeg, with its source.
    private func keyframe() throws -> (MediaPacket, StreamSource) {
        let path = folder.appendingPathComponent("camera.ts").path
        try ffmpeg(["-f", "lavfi", "-i", "testsrc=size=640x480:rate=25", "-t", "1", "-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p",
                    "-f", "mpegts", path])
        let source = try StreamSource(url: path)
        while let packet = try source.read() {
            if packet.isKeyframe { return (packet, source) }
        }
        throw TestSetupFailure("no keyframe")
    }

    private func mean(_ pixels: [UInt8], width: Int, columns: Range<Int>) -> Double {
        var sum = 0, count = 0
        for (index, value) in pixels.enumerated() where columns.contains(index % width) {
            sum += Int(value)
            count += 1
        }
        return Double(sum) / Double(max(1, count))
    }

    @Test func aKeyframeBecomesAScaledJPEGWithItsPrivacyMasksBlack() throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let (packet, source) = try keyframe()
        defer { source.close() }
        let leftHalf: Thumbnailer.Mask = [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]
        let thumbnail = try Thumbnailer.make(
            camera: "cam-1", keyframe: packet, parameterSets: source.parameterSets, video: source.video, masks: [leftHalf], maximumWidth: 320)
        #expect(thumbnail.width == 320 && thumbnail.height == 240)
        #expect(thumbnail.jpeg.prefix(2) == Data([0xFF, 0xD8]) && thumbnail.jpeg.suffix(2) == Data([0xFF, 0xD9]), "a JPEG's start and end markers")
        let path = folder.appendingPathComponent("thumbnail.jpg").path
        try thumbnail.jpeg.write(to: URL(fileURLWithPath: path))
        // Read back by ffmpeg: the masked half is black, the test pattern shows in the other.
        let pixels = try greyPixels(path)
        #expect(pixels.count == 320 * 240)
        #expect(mean(pixels, width: 320, columns: 0..<156) < 3, "the mask hides the left half")
        #expect(mean(pixels, width: 320, columns: 164..<320) > 40, "the picture shows in the right half")
    }

    @Test func onlyKeyframesAndDecodablePicturesMakeThumbnails() throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let (packet, source) = try keyframe()
        defer { source.close() }
        var notKey = packet
        notKey.isKeyframe = false
        #expect(throws: MediaError.self) {
            try Thumbnailer.make(camera: "cam-1", keyframe: notKey, parameterSets: source.parameterSets, video: source.video, masks: [])
        }
        // Garbage where the picture should be: an error with its code, no crash.
        var garbage = packet
        garbage.data = Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        do {
            _ = try Thumbnailer.make(camera: "cam-1", keyframe: garbage, parameterSets: Data(), video: source.video, masks: [])
            Issue.record("garbage made a thumbnail")
        } catch {
            #expect(error.code == "thumbnail_failed")
        }
    }

    @Test func theWorkerKeepsTheLatestThumbnailAndRateLimitsEachCamera() throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let (packet, source) = try keyframe()
        defer { source.close() }
        let made = Mutex<[String]>([])
        let first = DispatchSemaphore(value: 0)
        let worker = ThumbnailWorker(interval: .seconds(3600), maximumWidth: 160)
        worker.start { thumbnail in
            made.withLock { $0.append(thumbnail.camera) }
            first.signal()
        }
        defer { worker.stop() }
        worker.offer(camera: "cam-1", keyframe: packet, parameterSets: source.parameterSets, video: source.video, masks: [])
        #expect(first.wait(timeout: .now() + 10) == .success)
        // Within the camera's interval another keyframe is ignored; another camera is not held back.
        worker.offer(camera: "cam-1", keyframe: packet, parameterSets: source.parameterSets, video: source.video, masks: [])
        worker.offer(camera: "cam-2", keyframe: packet, parameterSets: source.parameterSets, video: source.video, masks: [])
        #expect(first.wait(timeout: .now() + 10) == .success)
        #expect(made.withLock { $0 } == ["cam-1", "cam-2"])
        #expect(worker.latest("cam-1")?.width == 160)
        worker.forget("cam-1")
        #expect(worker.latest("cam-1") == nil)
    }
}
