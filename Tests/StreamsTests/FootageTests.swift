import Foundation
import Synchronization
import Testing
import TestSupport
@testable import Streams

@Suite("Footage: pre-roll, segments, playback from a moment")
struct FootageTests {
    private func packet(_ key: Bool, at seconds: TimeInterval, bytes: Int = 10) -> MediaPacket {
        var packet = MediaPacket(data: Data(count: bytes), pts: Int64(seconds * 25), dts: Int64(seconds * 25), duration: 1, isKeyframe: key, isDisposable: false)
        packet.receivedAt = Date(timeIntervalSince1970: 1_000 + seconds)
        return packet
    }

    @Test func thePrerollKeepsTheGOPsOfItsDurationAndANewJoinerOnlyTheNewest() {
        var cache = GOPCache(maximumBytes: 1_000, prerollDuration: 3)
        for second in 0..<6 {
            cache.add(packet(true, at: Double(second)))
            cache.add(packet(false, at: Double(second) + 0.5))
        }
        // Keyframes at 0...5 s, the newest at 5: the pre-roll reaches back to 2 s (5 − 3).
        #expect(cache.preroll.compactMap(\.receivedAt).map { $0.timeIntervalSince1970 - 1_000 } == [2, 2.5, 3, 3.5, 4, 4.5, 5, 5.5])
        #expect(cache.packets.count == 2 && cache.packets.first?.isKeyframe == true)
        // Over the byte bound the oldest GOPs go first; the newest stays.
        var small = GOPCache(maximumBytes: 45, prerollDuration: 60)
        for second in 0..<4 { small.add(packet(true, at: Double(second), bytes: 10)); small.add(packet(false, at: Double(second) + 0.5, bytes: 10)) }
        #expect(small.bytes <= 45 && small.preroll.first?.isKeyframe == true && small.packets.count == 2)
        // Without wall-clock times (or a pre-roll), only the newest GOP is kept, as before.
        var plain = GOPCache(maximumBytes: 1_000)
        for tag in 0..<3 { plain.add(MediaPacket(data: Data([UInt8(tag)]), pts: nil, dts: nil, duration: 1, isKeyframe: tag != 1, isDisposable: false)) }
        #expect(plain.preroll.map { $0.data[0] } == [2])
    }

    @Test func aRecordingStartsWithThePrerollWritesSegmentsFromKeyframesAndPlaysBackFromAMoment() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-footage-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let source = folder.appendingPathComponent("camera.ts").path
        try ffmpeg(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "3", "-c:v", "libx264", "-g", "25", "-bf", "2",
                    "-x264-params", "b-pyramid=none:scenecut=0", "-pix_fmt", "yuv420p", "-f", "mpegts", source])
        var feedConfiguration = CameraFeed.Configuration()
        feedConfiguration.loopFiles = true  // real time, a keyframe each second
        let feed = CameraFeed(camera: "stib/de-brouckère 1", url: source, configuration: feedConfiguration)
        feed.start()
        defer { feed.stop() }
        // Three keyframes live before the recording starts, as a viewer sees them (a loaded machine
        // opens files slowly and paces them unevenly: counted, not timed).
        let watcher = feed.subscribe(id: "watcher", capacity: 1_000, maximumLateness: .seconds(60))
        var keyframes: [MediaPacket] = []
        let opening = ContinuousClock.now + .seconds(60)
        while keyframes.count < 3, ContinuousClock.now < opening { keyframes += watcher.take(timeout: .milliseconds(50)).filter(\.isKeyframe) }
        feed.unsubscribe(id: "watcher")
        let firstKeyframe = try #require(keyframes.first?.receivedAt)

        var configuration = FootageRecorder.Configuration(directory: folder.appendingPathComponent("footage"))
        configuration.segmentSeconds = 1
        let segments = SegmentLog()
        let recorder = FootageRecorder(configuration: configuration, onSegment: { segments.append($0) })
        recorder.start()
        let recordingStarted = Date()
        recorder.record(["stib/de-brouckère 1": feed])
        #expect(recorder.cameras == ["stib/de-brouckère 1"])
        try await Task.sleep(for: .milliseconds(1_500))
        // Recorded again after a pause: its pre-roll holds footage already written, which is not written twice.
        recorder.record([:])
        try await Task.sleep(for: .milliseconds(300))
        recorder.record(["stib/de-brouckère 1": feed])
        try await Task.sleep(for: .milliseconds(1_500))
        recorder.stop()

        let written = segments.all
        #expect(written.count >= 3, "\(written.count) segments")
        // The pre-roll: the recording reaches back to the first keyframe received, before it started.
        let first = try #require(written.first)
        #expect(first.start == firstKeyframe && first.start < recordingStarted, "first segment at \(first.start), recording at \(recordingStarted)")
        #expect(first.file.hasPrefix("stib%2Fde-brouck%C3%A8re%201/"))
        #expect(Set(written.map(\.file)).count == written.count, "no file written twice")
        for (segment, next) in zip(written, written.dropFirst()) {
            #expect(segment.keyframes.first == 0 && segment.bytes > 0 && segment.end > segment.start)
            // They follow each other without overlapping (after the pause, from the next keyframe: a
            // GOP, 1 s, at most; their times are of arrival, which a loaded machine delays: 1.25 s
            // and 2.04 s seen with the whole suite running).
            let gap = next.start.timeIntervalSince(segment.end)
            #expect(gap > -0.1 && gap < 4, "segments follow each other: \(gap) s")
        }
        for segment in written {
            let (codec, frames, errors) = try probe(folder.appendingPathComponent("footage").appendingPathComponent(segment.file).path)
            #expect(codec == "h264" && frames > 0 && errors.isEmpty, "\(segment.file): \(frames) frames, \(errors)")
        }

        // Playback from a moment inside the second segment: the first packet is the keyframe before it.
        let second = written[1]
        let moment = second.start.addingTimeInterval(0.5)
        let items = written.dropFirst().map { FootagePlayer.Item(segment: $0, url: folder.appendingPathComponent("footage").appendingPathComponent($0.file)) }
        let ended = SegmentLog.Reasons()
        let player = FootagePlayer(id: "playback", items: items, from: moment) { ended.append($0) }
        let asked = ContinuousClock.now
        player.start()
        let start = player.subscriber.take(timeout: .seconds(5), limit: 1)
        #expect(start.first?.isKeyframe == true)
        #expect(ContinuousClock.now - asked < .seconds(2), "the first picture comes at once")
        #expect(second.keyframe(atOrBefore: moment).at <= moment)
        var received = start.count
        let deadline = ContinuousClock.now + .seconds(30)
        while ended.all.isEmpty, ContinuousClock.now < deadline { received += player.subscriber.take(timeout: .milliseconds(50)).count }
        #expect(ended.all == ["the recorded footage ends here"])
        #expect(received > 25, "\(received) packets played")
    }
}

extension FootageTests {
    /// The largest and the mean luma of a region of the copy's picture at `second`.
    private func luma(_ path: String, second: Double, crop: String) throws -> (max: Int, mean: Double) {
        let picture = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-luma-\(UUID().uuidString).pgm").path
        defer { try? FileManager.default.removeItem(atPath: picture) }
        try ffmpeg(["-ss", "\(second)", "-i", path, "-frames:v", "1", "-vf", "crop=\(crop)", "-pix_fmt", "gray", picture])
        let pixels = try greyPixels(picture)
        return (Int(pixels.max() ?? 0), Double(pixels.reduce(0) { $0 + Int($1) }) / Double(max(1, pixels.count)))
    }

    @Test func aViewingCopyIsMaskedWatermarkedAndCutToItsRange() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-copy-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let segment = folder.appendingPathComponent("segment.ts")
        try ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-t", "4", "-c:v", "libx264", "-g", "25", "-bf", "2",
                    "-pix_fmt", "yuv420p", "-f", "mpegts", segment.path])
        let start = Date(timeIntervalSince1970: 1_780_000_000)
        let copy = folder.appendingPathComponent("viewing-copy.mp4")
        let pictures = try ViewingCopy.make(
            [ViewingCopy.Input(url: segment, start: start)], from: start.addingTimeInterval(1), to: start.addingTimeInterval(3),
            masks: [[[0, 0], [0.5, 0], [0.5, 1], [0, 1]]], watermark: "EVIDENCE: pz.viewer (pz-5339), incident 7 — 100% copy", output: copy)
        #expect((49...51).contains(pictures), "two seconds at 25 fps: \(pictures)")
        let (codec, frames, errors) = try probe(copy.path)
        #expect(codec == "h264" && frames == pictures && errors.isEmpty, "\(codec) \(frames) of \(pictures) \(errors)")
        // The masked left half is black below the watermark; the watermark's white text shows on it.
        let masked = try luma(copy.path, second: 1, crop: "300:200:10:100")
        #expect(masked.max < 40, "masked: \(masked)")
        let watermark = try luma(copy.path, second: 1, crop: "320:40:0:0")
        #expect(watermark.max > 200, "the watermark is drawn: \(watermark)")
        let open = try luma(copy.path, second: 1, crop: "300:200:330:100")
        #expect(open.mean > 40, "the right half shows the picture: \(open)")
    }

    @Test func aDiskThatRefusesTheFootageStopsTheRecordingNotTheLiveVideo() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-full-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let source = folder.appendingPathComponent("camera.ts").path
        try ffmpeg(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "2", "-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p", "-f", "mpegts", source])
        var feedConfiguration = CameraFeed.Configuration()
        feedConfiguration.loopFiles = true
        let feed = CameraFeed(camera: "cam-1", url: source, configuration: feedConfiguration)
        feed.start()
        defer { feed.stop() }
        // Never late (a loaded machine may pause this test's reads): only the recorder may lose anything.
        let viewer = feed.subscribe(id: "viewer", capacity: 1_000, maximumLateness: .seconds(60))
        // Where the camera's segments would go stands a file: no segment can be made (as on a full or failed disk).
        let footage = folder.appendingPathComponent("footage")
        try FileManager.default.createDirectory(at: footage, withIntermediateDirectories: true)
        try Data("in the way".utf8).write(to: footage.appendingPathComponent("cam-1"))
        let failures = SegmentLog.Reasons()
        let segments = SegmentLog()
        let recorder = FootageRecorder(
            configuration: FootageRecorder.Configuration(directory: footage), onSegment: { segments.append($0) }, onFailure: { _, error in failures.append(error.code) })
        recorder.start()
        recorder.record(["cam-1": feed])
        var received = 0
        let deadline = ContinuousClock.now + .seconds(30)
        while received < 60 || failures.all.isEmpty, ContinuousClock.now < deadline {
            received += viewer.take(timeout: .milliseconds(50)).count
        }
        recorder.stop()
        #expect(failures.all.first == "recording_failed", "\(failures.all)")
        #expect(segments.all.isEmpty)
        #expect(received >= 60 && viewer.dropped == 0, "the viewer got \(received) packets and lost \(viewer.dropped)")
    }
}

final class SegmentLog: Sendable {

    private let segments = Mutex<[RecordedSegment]>([])
    func append(_ segment: RecordedSegment) { segments.withLock { $0.append(segment) } }
    var all: [RecordedSegment] { segments.withLock { $0 } }

    final class Reasons: Sendable {
        private let reasons = Mutex<[String]>([])
        func append(_ reason: String) { reasons.withLock { $0.append(reason) } }
        var all: [String] { reasons.withLock { $0 } }
    }
}
