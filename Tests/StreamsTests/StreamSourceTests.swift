import Foundation
import TestSupport
import Glibc
import Testing
@testable import Streams

@Suite("Stream sources, GOP cache and MPEG-TS output")
struct StreamSourceTests {
    let folder: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-streams-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    /// 4 s of 25 fps test pattern, a keyframe every 25 frames, non-reference B-frames.
    private func camera(_ name: String = "camera.ts", codec: String = "libx264", extra: [String] = []) throws -> String {
        let path = folder.appendingPathComponent(name).path
        try ffmpeg(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "4", "-c:v", codec, "-g", "25", "-keyint_min", "25",
                    "-bf", "2", "-x264-params", "b-pyramid=none:scenecut=0", "-pix_fmt", "yuv420p"] + extra + ["-f", "mpegts", path])
        return path
    }

    @Test func readsPacketsWithoutDecodingAndKeepsTheParameterSets() throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = try StreamSource(url: try camera())
        #expect(source.video.codec == .h264 && source.video.width == 320 && source.video.height == 240)
        var packets: [MediaPacket] = []
        while let packet = try source.read() { packets.append(packet) }
        #expect(packets.count == 100)
        #expect(packets.filter(\.isKeyframe).count == 4)
        #expect(packets.first?.isKeyframe == true)
        #expect(packets.filter(\.isDisposable).count > 30, "B-frames without b-pyramid are not referenced")
        #expect(!packets.contains { $0.isKeyframe && $0.isDisposable })
        #expect(!source.parameterSets.isEmpty, "SPS and PPS found in the keyframes")
        #expect(AnnexB.nalUnits(source.parameterSets).map { $0.first! & 0x1F } == [7, 8])

        // A keyframe is given the parameter sets only when it lacks them.
        let keyframe = try #require(packets.first).data
        let bare = Data(AnnexB.nalUnits(keyframe).filter { ![7, 8].contains($0.first! & 0x1F) }.map { Data([0, 0, 0, 1]) + $0 }.joined())
        #expect(AnnexB.withParameterSets(source.parameterSets, before: bare, codec: .h264) == source.parameterSets + bare)
        #expect(AnnexB.withParameterSets(source.parameterSets, before: keyframe, codec: .h264) == keyframe)
        #expect(AnnexB.withParameterSets(Data(), before: bare, codec: .h264) == bare)
    }

    @Test func theGOPCacheStartsAtTheLastKeyframeAndStaysBounded() throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = try StreamSource(url: try camera())
        var cache = GOPCache(maximumBytes: 4 * 1024 * 1024)
        var small = GOPCache(maximumBytes: 2_000)
        for _ in 0..<60 {
            let packet = try #require(try source.read())
            cache.add(packet)
            small.add(packet)
        }
        // Keyframes at 0, 25 and 50: the cache holds packets 50 to 59.
        #expect(cache.packets.count == 10)
        #expect(cache.packets.first?.isKeyframe == true)
        #expect(cache.bytes == cache.packets.reduce(0) { $0 + $1.data.count })
        #expect(small.packets.isEmpty && small.bytes == 0, "a GOP larger than the bound is not kept")
    }

    @Test func writesStandardMPEGTSThatFFprobeReads() throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = try StreamSource(url: try camera())
        let output = folder.appendingPathComponent("relayed.ts").path
        let writer = try StreamWriter(output: output, video: source.video)
        while let packet = try source.read() { try writer.write(packet) }
        try writer.finish()
        let probed = try probe(output)
        #expect(probed.codec == "h264")
        #expect(probed.frames == 100)
        #expect(probed.errors.isEmpty, "\(probed.errors)")
    }

    /// Fragmented MP4 to memory, as browsers are sent: the first packet (a keyframe) comes out
    /// with the initialization segment and its own fragment, at once; every later packet is a
    /// fragment of its own; and the whole is MP4 that ffprobe reads.
    @Test func writesFragmentedMP4APacketAFragmentFromTheFirstKeyframe() throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = try StreamSource(url: try camera())
        let writer = try StreamWriter(video: source.video, container: .fragmentedMP4)
        var outputs: [[UInt8]] = []
        while let packet = try source.read() {
            try writer.write(packet)
            outputs.append(writer.takeOutput())
        }
        try writer.finish()
        func boxes(_ bytes: [UInt8]) -> [String] {
            var types: [String] = [], offset = 0
            while offset + 8 <= bytes.count {
                let size = bytes[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) }
                types.append(String(decoding: bytes[offset + 4..<offset + 8], as: UTF8.self))
                guard size >= 8 else { break }
                offset += size
            }
            return types
        }
        #expect(boxes(outputs[0]) == ["ftyp", "moov", "moof", "mdat"], "\(boxes(outputs[0]))")
        #expect(outputs.dropFirst().allSatisfy { boxes($0) == ["moof", "mdat"] }, "a fragment per packet")
        let file = folder.appendingPathComponent("browser.mp4")
        try Data(outputs.joined()).write(to: file)
        let probed = try probe(file.path)
        #expect(probed.codec == "h264" && probed.frames == 100 && probed.errors.isEmpty, "\(probed)")
    }

    @Test func badSourcesFailWithClearCodes() throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let garbage = folder.appendingPathComponent("garbage.ts")
        try Data((0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 7919) }).write(to: garbage)
        #expect(throws: MediaError.self) { _ = try StreamSource(url: garbage.path) }
        do { _ = try StreamSource(url: garbage.path) } catch { #expect(["source_invalid", "no_video_stream"].contains(error.code), "\(error)") }
        do { _ = try StreamSource(url: folder.appendingPathComponent("missing.ts").path) } catch { #expect(error.code == "source_unreachable") }

        // Half a file: what is there is read, then the stream ends; nothing crashes.
        let whole = try Data(contentsOf: URL(fileURLWithPath: try camera()))
        let half = folder.appendingPathComponent("half.ts")
        try whole.prefix(whole.count / 2).write(to: half)
        let truncated = try StreamSource(url: half.path)
        var count = 0
        while let _ = try truncated.read() { count += 1 }
        #expect(count > 10 && count < 100)

        let mpeg2 = try camera("mpeg2.ts", codec: "mpeg2video", extra: [])
        do { _ = try StreamSource(url: mpeg2) } catch { #expect(error.code == "codec_unsupported") }
    }

    @Test func readsALiveMPEGTSStreamOverUDPFromFFmpeg() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        try await offThePool { [folder] in try Self.readLiveUDP(folder: folder) }
    }

    /// ffmpeg sends a live stream over UDP; it is read, then its silence stalls the source.
    private static func readLiveUDP(folder: URL) throws {
        let port = Int.random(in: 50_001...60_000)
        // ffmpeg as a camera: libx264 in real time (-re) to a UDP port, for 6 s.
        let camera = Process()
        camera.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
        camera.arguments = ["-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "6",
                            "-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p", "-f", "mpegts", "udp://127.0.0.1:\(port)?pkt_size=1316"]
        camera.standardInput = FileHandle.nullDevice
        try camera.run()
        defer { if camera.isRunning { camera.terminate() } }
        // The timeout covers ffmpeg's own start, which a loaded machine can stretch to seconds.
        let source = try StreamSource(url: "udp://127.0.0.1:\(port)?overrun_nonfatal=1", options: .init(timeout: .seconds(8)))
        #expect(source.video.codec == .h264 && source.video.width == 320)
        var packets = 0, keyframes = 0
        while packets < 50, let packet = try source.read() {
            packets += 1
            if packet.isKeyframe { keyframes += 1 }
        }
        #expect(packets == 50 && keyframes >= 1)
        camera.terminate()
        camera.waitUntilExit()
        // The camera is gone: the next reads stall within the timeout instead of hanging.
        let stalled = #expect(throws: MediaError.self) { while try source.read() != nil {} }
        #expect(stalled?.code == "source_stalled")
    }

    @Test func h265PassesThroughUntouched() throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("hevc.ts").path
        try ffmpeg(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "2", "-c:v", "libx265", "-g", "25", "-x265-params", "log-level=error",
                    "-pix_fmt", "yuv420p", "-f", "mpegts", path])
        let source = try StreamSource(url: path)
        #expect(source.video.codec == .hevc)
        let output = folder.appendingPathComponent("relayed-hevc.ts").path
        let writer = try StreamWriter(output: output, video: source.video)
        var packets = 0, keyframes = 0
        while let packet = try source.read() {
            try writer.write(packet)
            packets += 1
            if packet.isKeyframe { keyframes += 1 }
        }
        try writer.finish()
        #expect(packets == 50 && keyframes >= 2)
        #expect(!source.parameterSets.isEmpty, "VPS, SPS and PPS kept")
        let probed = try probe(output)
        #expect(probed.codec == "hevc" && probed.frames == 50 && probed.errors.isEmpty, "\(probed)")
    }

    /// MPEG-TS from ffmpeg listening on TCP, and from an HTTP server (Python's), as some encoders and gateways serve it.
    @Test(arguments: ["tcp", "http"])
    func readsMPEGTSOverTCPAndHTTP(transport: String) async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = try camera()
        try await offThePool { [folder] in try Self.readServedMPEGTS(path, from: folder, transport: transport) }
    }

    /// Serves `path` (in `folder`) over `transport` and reads it back.
    private static func readServedMPEGTS(_ path: String, from folder: URL, transport: String) throws {
        let port = try freeLoopbackPort()
        let server = Process()
        server.standardInput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        server.standardOutput = FileHandle.nullDevice
        let url: String
        if transport == "tcp" {
            server.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
            server.arguments = ["-hide_banner", "-loglevel", "error", "-re", "-i", path, "-c", "copy", "-f", "mpegts", "tcp://127.0.0.1:\(port)?listen=1"]
            url = "tcp://127.0.0.1:\(port)"
        } else {
            server.executableURL = URL(fileURLWithPath: ProcessInfo.processInfo.environment["VIGIL_PYTHON"] ?? "/usr/bin/python3")
            server.arguments = ["-m", "http.server", "\(port)", "--bind", "127.0.0.1", "--directory", folder.path]
            url = "http://127.0.0.1:\(port)/camera.ts"
        }
        try server.run()
        defer {
            kill(server.processIdentifier, SIGKILL)
            server.waitUntilExit()
        }
        // The server takes a moment to listen.
        var opened: StreamSource?
        let deadline = ContinuousClock.now + .seconds(10)
        while opened == nil, ContinuousClock.now < deadline {
            do {
                opened = try StreamSource(url: url, options: .init(timeout: .seconds(3)))
            } catch {
                Thread.sleep(forTimeInterval: 0.2)
            }
        }
        let source = try #require(opened, "could not open \(url)")
        defer { source.close() }
        #expect(source.video.codec == .h264 && source.video.width == 320)
        var packets = 0, keyframes = 0
        while packets < 50, let packet = try source.read() {
            packets += 1
            if packet.isKeyframe { keyframes += 1 }
        }
        #expect(packets == 50 && keyframes >= 2)
    }

    @Test func aResolutionChangeMidStreamPassesThrough() throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let small = try camera("small.ts")
        let large = folder.appendingPathComponent("large.ts").path
        try ffmpeg(["-f", "lavfi", "-i", "testsrc=size=640x480:rate=25", "-t", "2", "-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p",
                    "-f", "mpegts", large])
        // One stream whose picture size changes at a keyframe, as a camera reconfigured mid-stream would send.
        let both = folder.appendingPathComponent("both.ts")
        try (try Data(contentsOf: URL(fileURLWithPath: small)) + Data(contentsOf: URL(fileURLWithPath: large))).write(to: both)
        let source = try StreamSource(url: both.path)
        let output = folder.appendingPathComponent("relayed-both.ts").path
        let writer = try StreamWriter(output: output, video: source.video)
        var packets = 0
        while let packet = try source.read() {
            try writer.write(packet)
            packets += 1
        }
        try writer.finish()
        #expect(packets == 150)
        let probed = try probe(output)
        #expect(probed.codec == "h264" && probed.frames == 150, "\(probed)")
    }

    @Test func aSilentSourceStallsWithinItsTimeout() throws {
        // Nobody sends to this UDP port: the interrupt callback ends the wait.
        let started = ContinuousClock.now
        do {
            _ = try StreamSource(url: "udp://127.0.0.1:\(Int.random(in: 40_000...50_000))", options: .init(timeout: .milliseconds(800)))
            Issue.record("a silent source opened")
        } catch {
            #expect(["source_stalled", "source_invalid"].contains(error.code), "\(error)")
        }
        #expect(ContinuousClock.now - started < .seconds(10))
    }
}

@Suite("Simulated cameras")
struct SimulatedCameraTests {
    @Test func makeRealH264ThatFFprobeReads() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-sim-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let camera = try SimulatedCamera(camera: "pz5339-street-0393", framesPerSecond: 25)
        #expect(camera.video.codec == .h264 && camera.video.width == 320 && camera.video.height == 180)
        let output = folder.appendingPathComponent("simulated.ts").path
        let writer = try StreamWriter(output: output, video: camera.video)
        var keyframes = 0
        for _ in 0..<30 {
            let packet = try #require(try camera.read())
            if packet.isKeyframe { keyframes += 1 }
            try writer.write(packet)
        }
        try writer.finish()
        #expect(keyframes >= 1)
        #expect(!camera.parameterSets.isEmpty, "every keyframe carries SPS and PPS")
        let probed = try probe(output)
        #expect(probed.codec == "h264" && probed.frames == 30 && probed.errors.isEmpty, "\(probed)")
    }
}
