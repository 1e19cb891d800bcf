import Foundation
import TestSupport
import Synchronization
import Testing
@testable import Streams

/// Ingest from a real RTSP server (gst-rtsp-server), over both transports, and a feed that
/// loses its RTSP camera and gets it back.
@Suite("RTSP cameras", .serialized)
struct RTSPSourceTests {
    @Test(arguments: ["tcp", "udp"])
    func readsH264FromARealRTSPServer(transport: String) async throws {
        try await offThePool { try Self.readFromRTSP(transport: transport) }
    }

    private static func readFromRTSP(transport: String) throws {
        let camera = try RTSPCamera(port: try freeLoopbackPort())
        defer { camera.stop() }
        let source = try StreamSource(url: camera.url, options: .init(timeout: .seconds(5), rtspTransport: transport))
        defer { source.close() }
        #expect(source.video.codec == .h264 && source.video.width == 320 && source.video.height == 240)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-rtsp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let output = folder.appendingPathComponent("rtsp.ts").path
        let writer = try StreamWriter(output: output, video: source.video)
        // From the first keyframe on (what a relay's cache and a viewer start from), 2 s at 25 fps.
        var written = 0
        while written < 50, let packet = try source.read() {
            guard written > 0 || packet.isKeyframe else { continue }
            try writer.write(packet)
            written += 1
        }
        try writer.finish()
        #expect(written == 50)
        #expect(!source.parameterSets.isEmpty, "SPS and PPS kept")
        let probed = try probe(output)
        #expect(probed.codec == "h264" && probed.frames == 50 && probed.errors.isEmpty, "\(probed)")
    }

    @Test func aFeedLosesItsRTSPCameraSaysWhyAndResumesWhenItComesBack() async throws {
        let port = try freeLoopbackPort()
        var camera = try RTSPCamera(port: port)
        defer { camera.stop() }
        let states = Mutex<[FeedState]>([])
        var configuration = CameraFeed.Configuration()
        configuration.source = .init(timeout: .seconds(2), rtspTransport: "tcp")
        configuration.backoff = Backoff(initial: .milliseconds(200), maximum: .seconds(1))
        let feed = CameraFeed(camera: "rtsp-1", url: camera.url, configuration: configuration) { _, state in states.withLock { $0.append(state) } }
        feed.start()
        defer { feed.stop() }
        let viewer = feed.subscribe(id: "viewer")
        func waitFor(_ what: String, _ condition: () -> Bool) async throws {
            let deadline = ContinuousClock.now + .seconds(60)  // a bound on failing, generous for a loaded machine
            while !condition() {
                guard ContinuousClock.now < deadline else { throw TestSetupFailure("no \(what): \(states.withLock { $0 })") }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        try await waitFor("picture") { !viewer.take(timeout: .zero).isEmpty }
        camera.stop()
        try await waitFor("loss") {
            if case .live = feed.state { return false }
            return true
        }
        let lost = feed.state
        switch lost {
        case .stalled(let reason), .down(let reason): #expect(!reason.isEmpty)
        default: Issue.record("a lost camera is stalled or down, not \(lost)")
        }
        camera = try RTSPCamera(port: port)
        try await waitFor("return") { feed.state == .live }
        #expect(feed.reconnects >= 1)
        let again = feed.subscribe(id: "after")
        try await waitFor("picture after the return") { again.take(timeout: .zero).contains(where: \.isKeyframe) }
    }
}
