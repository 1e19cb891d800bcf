import Bus
import Foundation
import Streams
import Synchronization

/// `vigil bench streams`: the relay's figures on a real H.264 stream made by ffmpeg (libx264,
/// 1280×720, 25 fps, a keyframe every 2 s, about 4 Mbit/s), each beside its target.
public struct StreamsBenchmark {
    let ffmpeg: String

    /// - Parameter ffmpeg: the ffmpeg that makes the test streams.
    public init(ffmpeg: String) {
        self.ffmpeg = ffmpeg
    }

    public func run() throws {
        let folder = try makeBenchFolder("streams")
        defer { try? FileManager.default.removeItem(at: folder) }
        let stream = try makeStream(in: folder, name: "camera.ts", size: "1280x720", seconds: 10, bitrate: "4M")
        Measurement.say("vigil bench streams: a 1280x720 H.264 stream at 25 fps, a keyframe every 2 s, ~4 Mbit/s, played in real time")

        for (label, cache) in [("GOP cache", 16 * 1024 * 1024), ("no cache (ref.)", 0)] {
            let waits = try lateJoinerWaits(stream, cacheBytes: cache, trials: 10)
            print(Measurement.row("late joiner, first keyframe, \(label), p50", Measurement.percentile(waits, 0.5), unit: "ms", target: cache > 0 ? 100 : nil))
            print(Measurement.row("late joiner, first keyframe, \(label), p99", Measurement.percentile(waits, 0.99), unit: "ms", target: cache > 0 ? 100 : nil))
        }

        let handOff = relayHandOff(packets: 2_000)
        print(Measurement.row("added relay latency, feed to viewer queue, p99", Measurement.percentile(handOff, 0.99), unit: "ms", target: 5))

        // The CPU time includes the receiving clients, which run in this process and decrypt
        // everything too: the relay's own share is smaller.
        for (label, peers, feeds) in [("1 feed x 200 subscribers", 200, 1), ("200 feeds x 2 subscribers", 400, 200)] {
            let result = try BusBenchmark.mediaFanOut(peers: peers, packets: 125, packetBytes: 20_000, distinctPayloads: feeds)
            let gigabits = Double(result.bytes) * 8 / 1e9
            print(Measurement.row("\(label), 4 Mbit/s each: relayed", gigabits / result.seconds, unit: "Gb/s", target: nil))
            print(Measurement.row("\(label): per core, clients incl.", gigabits / max(1e-9, result.cpuSeconds), unit: "Gb/s", target: nil,
                                  note: "in process; beside nginx-rtmp through the real server: vigil bench relay"))
        }
        let fullHD = try makeStream(in: folder, name: "camera-1080p.ts", size: "1920x1080", seconds: 4, bitrate: "8M")
        let thumbnails = try thumbnailTimes(fullHD)
        print(Measurement.row("thumbnail of a 1080p keyframe, p50", Measurement.percentile(thumbnails, 0.5), unit: "ms", target: 20))
        print(Measurement.row("thumbnail of a 1080p keyframe, p99", Measurement.percentile(thumbnails, 0.99), unit: "ms", target: 20))
        Measurement.say("  (the media endpoint's network hop is CURVE over loopback: see vigil bench bus)")

        // A camera with privacy masks is decoded, masked and encoded again: the one camera the
        // relay decodes. What one costs, in cores (the brief's reference: a 1080p decode alone
        // takes a core for 6–7 cameras).
        for (label, file) in [("720p", stream), ("1080p", fullHD)] {
            let cores = try maskingCores(file)
            print(Measurement.row("a masked \(label) camera, live: cores it takes", cores, unit: "cores", target: nil,
                                  note: String(format: "%.1f such cameras a core; unmasked cameras are not decoded", 1 / max(1e-9, cores))))
        }

        let memory = try memoryPerCamera(stream, cameras: 40)
        print(Measurement.row("memory per live camera, GOP cache included", memory / 1_048_576, unit: "MiB", target: nil))
    }

    /// A test stream made by ffmpeg: testsrc2 (moving, detailed), 25 fps, a keyframe every 2 s.
    func makeStream(in folder: URL, name: String, size: String, seconds: Int, bitrate: String) throws -> String {
        let stream = folder.appendingPathComponent(name).path
        try makeStream(at: stream, size: size, seconds: seconds, bitrate: bitrate)
        return stream
    }

    private func makeStream(at stream: String, size: String, seconds: Int, bitrate: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ffmpeg)
        process.arguments = ["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=\(size):rate=25", "-t", "\(seconds)",
                             "-c:v", "libx264", "-preset", "veryfast", "-b:v", bitrate, "-maxrate", bitrate, "-bufsize", "8M", "-g", "50",
                             "-keyint_min", "50", "-x264-params", "scenecut=0", "-pix_fmt", "yuv420p", "-f", "mpegts", stream]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw MediaError(.benchSetup, message: "ffmpeg could not make the test stream") }
    }

    /// The CPU seconds (every thread of this process: decoder, masks, libx264's threads) that
    /// masking `stream` takes, per second of its video (25 fps), read as fast as it goes.
    private func maskingCores(_ stream: String) throws -> Double {
        let masks: [Thumbnailer.Mask] = [[[0.7, 0.1], [0.95, 0.1], [0.95, 0.4], [0.7, 0.4]], [[0, 0.6], [0.3, 0.6], [0.3, 1], [0, 1]]]
        let masked = try PrivacyMaskedSource(try StreamSource(url: stream), masks: masks)
        defer { masked.close() }
        let before = BusBenchmark.cpuSeconds()
        var pictures = 0
        while try masked.read() != nil { pictures += 1 }
        guard pictures > 0 else { throw MediaError(.benchSetup, message: "no picture came out of the masking") }
        return (BusBenchmark.cpuSeconds() - before) / (Double(pictures) / 25)
    }

    /// Milliseconds to make a 320-pixel thumbnail from each keyframe of `stream`, 20 rounds, with a privacy mask.
    private func thumbnailTimes(_ stream: String) throws -> [Double] {
        let source = try StreamSource(url: stream)
        defer { source.close() }
        var keyframes: [MediaPacket] = []
        while keyframes.count < 2, let packet = try source.read() {
            if packet.isKeyframe { keyframes.append(packet) }
        }
        let mask: Thumbnailer.Mask = [[0.7, 0.1], [0.95, 0.1], [0.95, 0.4], [0.7, 0.4]]
        var times: [Double] = []
        for round in 0..<20 {
            let start = ContinuousClock.now
            _ = try Thumbnailer.make(
                camera: "bench", keyframe: keyframes[round % keyframes.count], parameterSets: source.parameterSets, video: source.video, masks: [mask])
            let elapsed = ContinuousClock.now - start
            times.append(elapsed / .milliseconds(1))
        }
        return times.sorted()
    }

    /// Milliseconds from subscribing at a random moment to holding a keyframe.
    private func lateJoinerWaits(_ stream: String, cacheBytes: Int, trials: Int) throws -> [Double] {
        var configuration = CameraFeed.Configuration()
        configuration.loopFiles = true
        configuration.cacheBytes = cacheBytes
        let feed = CameraFeed(camera: "bench", url: stream, configuration: configuration)
        feed.start()
        defer { feed.stop() }
        Thread.sleep(forTimeInterval: 2.5)
        var waits: [Double] = []
        for trial in 0..<trials {
            Thread.sleep(forTimeInterval: Double.random(in: 0.05...0.6))
            let start = ContinuousClock.now
            let subscriber = feed.subscribe(id: "late-\(trial)", capacity: 512)
            var waited: Double?
            while waited == nil, ContinuousClock.now - start < .seconds(5) {
                if subscriber.take(timeout: .milliseconds(20)).contains(where: \.isKeyframe) {
                    let elapsed = ContinuousClock.now - start
                    waited = elapsed / .milliseconds(1)
                }
            }
            feed.unsubscribe(id: "late-\(trial)")
            waits.append(waited ?? 5_000)
        }
        return waits.sorted()
    }

    /// Milliseconds from a packet's offer by the feed to its arrival in a waiting viewer's hands.
    private func relayHandOff(packets: Int) -> [Double] {
        let feed = CameraFeed(camera: "handoff", url: "/nonexistent")
        let subscriber = feed.subscribe(id: "viewer", capacity: 1_000)
        let offered = Mutex<[Int64: ContinuousClock.Instant]>([:])
        let latencies = Mutex<[Double]>([])
        let done = DispatchSemaphore(value: 0)
        let reader = Thread {
            var seen = 0
            while seen < packets {
                for packet in subscriber.take(timeout: .seconds(1)) {
                    let now = ContinuousClock.now
                    if let at = offered.withLock({ $0[packet.pts ?? -1] }) {
                        let elapsed = now - at
                        latencies.withLock { $0.append(elapsed / .milliseconds(1)) }
                    }
                    seen += 1
                }
            }
            done.signal()
        }
        reader.start()
        for index in 0..<packets {
            let packet = MediaPacket(data: Data(count: 20_000), pts: Int64(index), dts: Int64(index), duration: 1, isKeyframe: index % 50 == 0, isDisposable: false)
            offered.withLock { $0[Int64(index)] = ContinuousClock.now }
            subscriber.offer(packet)
            Thread.sleep(forTimeInterval: 0.002)
        }
        done.wait()
        return latencies.withLock { $0 }.sorted()
    }

    /// Resident memory added per live camera feed, in bytes.
    private func memoryPerCamera(_ stream: String, cameras: Int) throws -> Double {
        let before = Measurement.residentBytes()
        var configuration = CameraFeed.Configuration()
        configuration.loopFiles = true
        let feeds = (0..<cameras).map { CameraFeed(camera: "memory-\($0)", url: stream, configuration: configuration) }
        feeds.forEach { $0.start() }
        Thread.sleep(forTimeInterval: 3)
        let after = Measurement.residentBytes()
        feeds.forEach { $0.stop() }
        return Double(after - before) / Double(cameras)
    }
}
