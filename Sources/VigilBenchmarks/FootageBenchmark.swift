import Crypto
import Foundation
import Incidents
import Streams
import Synchronization

/// `vigil bench footage`: recording's cost beside serving, playback's first picture, and an
/// evidence export's speed, on real H.264 made by ffmpeg (1280×720, 25 fps, ~4 Mbit/s, a
/// keyframe every 2 s), each beside its target.
public struct FootageBenchmark {
    let ffmpeg: String
    let cameras: Int
    /// The vigil binary whose server the playback figure is measured through.
    let vigil: String

    public init(ffmpeg: String, cameras: Int = 50, vigil: String) {
        self.ffmpeg = ffmpeg
        self.cameras = cameras
        self.vigil = vigil
    }

    public func run() throws {
        let folder = try makeBenchFolder("footage")
        defer { try? FileManager.default.removeItem(at: folder) }
        let stream = try StreamsBenchmark(ffmpeg: ffmpeg).makeStream(in: folder, name: "camera.ts", size: "1280x720", seconds: 60, bitrate: "4M")
        Measurement.say("vigil bench footage: \(cameras) cameras of a 1280x720 H.264 stream at 25 fps, ~4 Mbit/s, played in real time")

        let (serving, recording, writer) = try recordingCost(stream, in: folder)
        let added = (recording - serving) / max(1e-9, serving) * 100
        print(Measurement.row("serving \(cameras) cameras, 1 viewer each: CPU", serving * 100, unit: "%", target: nil, note: "of one core, no recording, median of 3 windows"))
        print(Measurement.row("the same while recording all of them: CPU", recording * 100, unit: "%", target: nil, note: "of one core, median of 3 windows between those"))
        print(Measurement.row("CPU recording adds to serving", added, unit: "%", target: 10,
                              note: "baseline without network sends: the real serving path costs more, so this is an upper bound"))
        print(Measurement.row("of it, the recorder's own thread", writer / max(1e-9, serving) * 100, unit: "%", target: 10,
                              note: "\(String(format: "%.1f", writer * 100)) % of one core: the writing itself, free of the machine's noise"))

        let segments = try segment(stream, in: folder)
        let firstPictures = try playbackFirstPictures(segments, trials: 20)
        let served = try PlaybackThroughTheServer(vigil: vigil).firstPictures(trials: 20)
        print(Measurement.row("playback through vigil serve, first keyframe, p50", Measurement.percentile(served, 0.5), unit: "ms", target: 300,
                              note: "CURVE, decision, audit, catalog, player"))
        print(Measurement.row("playback through vigil serve, first keyframe, p99", Measurement.percentile(served, 0.99), unit: "ms", target: 300))
        print(Measurement.row("the player alone (720p segments), p50", Measurement.percentile(firstPictures, 0.5), unit: "ms", target: nil))

        // Ten minutes: the one-minute stream's ten segments, ten times over, one after another.
        let tenMinutes = (0..<10).flatMap { round in
            segments.map { ViewingCopy.Input(url: $0.url, start: $0.segment.start.addingTimeInterval(Double(round) * 60)) }
        }
        let originals = try exportOriginals(tenMinutes, to: folder.appendingPathComponent("package"))
        print(Measurement.row("export of 10 min, originals hashed and signed", 600 / originals, unit: "x rt", target: 20, lowerIsBetter: false))
        let start = ContinuousClock.now
        _ = try ViewingCopy.make(
            segments.map { ViewingCopy.Input(url: $0.url, start: $0.segment.start) }, from: segments[0].segment.start, to: segments[0].segment.start.addingTimeInterval(60),
            masks: [[[0.7, 0.1], [0.95, 0.1], [0.95, 0.4], [0.7, 0.4]]], watermark: "VIGIL BENCH - viewing copy",
            output: folder.appendingPathComponent("viewing-copy.mp4"))
        let copySeconds = (ContinuousClock.now - start) / .seconds(1)
        print(Measurement.row("viewing copy of 1 min (masks, watermark, x264)", 60 / copySeconds, unit: "x rt", target: nil,
                              note: "the one re-encoding; 10 min take ten times as long"))
        print(Measurement.row("pre-roll kept per live camera (10 s at ~4 Mbit/s)", prerollBytes(stream) / 1_048_576, unit: "MiB", target: nil))
    }

    /// The process's CPU (cores busy) over a window serving `cameras` feeds of `stream`, each
    /// to one viewer that reads everything, then the same while all of them are recorded.
    private func recordingCost(_ stream: String, in folder: URL) throws -> (serving: Double, recording: Double, writer: Double) {
        var configuration = CameraFeed.Configuration()
        configuration.loopFiles = true
        let feeds = (0..<cameras).map { CameraFeed(camera: "bench-\($0)", url: stream, configuration: configuration) }
        feeds.forEach { $0.start() }
        defer { feeds.forEach { $0.stop() } }
        let viewers = feeds.map { $0.subscribe(id: "viewer", capacity: 4_096) }
        let stopping = Atomic<Bool>(false)
        let reading = DispatchSemaphore(value: 0)
        let reader = Thread {
            while !stopping.load(ordering: .relaxed) {
                var read = 0
                for viewer in viewers { read += viewer.take(timeout: .zero).count }
                if read == 0 { Thread.sleep(forTimeInterval: 0.005) }
            }
            reading.signal()
        }
        reader.start()
        defer {
            stopping.store(true, ordering: .relaxed)
            reading.wait()
        }
        Thread.sleep(forTimeInterval: 3)
        func busy(for seconds: Double) -> Double {
            let (cpu, wall) = (BusBenchmark.cpuSeconds(), ContinuousClock.now)
            Thread.sleep(forTimeInterval: seconds)
            return (BusBenchmark.cpuSeconds() - cpu) / ((ContinuousClock.now - wall) / .seconds(1))
        }
        // The machine's own noise is as large as the figure: windows alternate, without and with
        // recording, and the medians are compared.
        var recorderConfiguration = FootageRecorder.Configuration(directory: folder.appendingPathComponent("recorded"))
        recorderConfiguration.segmentSeconds = 6
        let recorder = FootageRecorder(configuration: recorderConfiguration, onSegment: { _ in })
        recorder.start()
        defer { recorder.stop() }
        var (serving, recording, writer): ([Double], [Double], [Double]) = ([], [], [])
        for _ in 0..<3 {
            recorder.record([:])
            Thread.sleep(forTimeInterval: 0.5)
            serving.append(busy(for: 5))
            recorder.record(Dictionary(uniqueKeysWithValues: feeds.map { ($0.camera, $0) }))
            // Each recording starts with the feeds' 10 s pre-roll (its footage of the window before
            // is written then): the steady state, live packets only, is what is measured.
            Thread.sleep(forTimeInterval: 3)
            let (writerBefore, wall) = (recorder.writerCPUSeconds, ContinuousClock.now)
            recording.append(busy(for: 5))
            writer.append((recorder.writerCPUSeconds - writerBefore) / ((ContinuousClock.now - wall) / .seconds(1)))
        }
        return (serving.sorted()[1], recording.sorted()[1], writer.sorted()[1])
    }

    /// Segments of `stream` as a recording cuts them (ffmpeg's segment muxer at its keyframes,
    /// about 6 s each), with their keyframe index.
    private func segment(_ stream: String, in folder: URL) throws -> [FootagePlayer.Item] {
        let directory = folder.appendingPathComponent("segments")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ffmpeg)
        process.arguments = ["-hide_banner", "-loglevel", "error", "-y", "-i", stream, "-c", "copy", "-f", "segment", "-segment_time", "6",
                             "-reset_timestamps", "0", directory.appendingPathComponent("%03d.ts").path]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw MediaError(.benchSetup, message: "ffmpeg could not segment the test stream") }
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".ts") }.sorted()
        var start = Date().addingTimeInterval(-3_600)
        return try files.map { file in
            let url = directory.appendingPathComponent(file)
            let segment = try RecordedSegment.scan(url, camera: "bench", file: file, start: start)
            start = segment.end
            return FootagePlayer.Item(segment: segment, url: url)
        }
    }

    /// Milliseconds from a playback request at a random moment (the stream's description read,
    /// the player started) to the first keyframe in the viewer's hands.
    private func playbackFirstPictures(_ items: [FootagePlayer.Item], trials: Int) throws -> [Double] {
        var times: [Double] = []
        for trial in 0..<trials {
            let first = items[trial % (items.count - 1)]
            let moment = first.segment.start.addingTimeInterval(Double.random(in: 0..<(first.segment.end.timeIntervalSince(first.segment.start))))
            let start = ContinuousClock.now
            let playing = Array(items.drop { $0.segment.end <= moment })
            _ = try FootagePlayer.stream(of: playing[0])
            let player = FootagePlayer(id: "bench-\(trial)", items: playing, from: moment) { _ in }
            player.start()
            var waited: Double?
            while waited == nil, ContinuousClock.now - start < .seconds(5) {
                if player.subscriber.take(timeout: .milliseconds(5)).contains(where: \.isKeyframe) { waited = (ContinuousClock.now - start) / .milliseconds(1) }
            }
            player.stop()
            times.append(waited ?? 5_000)
        }
        return times.sorted()
    }

    /// Seconds to copy `inputs` into a package, hash each and sign a manifest, as an export does.
    private func exportOriginals(_ inputs: [ViewingCopy.Input], to package: URL) throws -> Double {
        let start = ContinuousClock.now
        try FileManager.default.createDirectory(at: package.appendingPathComponent("original"), withIntermediateDirectories: true)
        var files: [EvidenceManifest.File] = []
        for (index, input) in inputs.enumerated() {
            let path = "original/\(index).ts"
            try FileManager.default.copyItem(at: input.url, to: package.appendingPathComponent(path))
            let (hash, bytes) = try EvidencePackage.sha256(of: package.appendingPathComponent(path))
            files.append(EvidenceManifest.File(path: path, role: .original, bytes: bytes, sha256: hash))
        }
        let key = Curve25519.Signing.PrivateKey()
        let manifest = EvidenceManifest(
            export: "bench", createdAt: Date(), serverKey: key.publicKey.rawRepresentation.base64EncodedString(), incident: 1, camera: "bench", owner: "bench",
            footageFrom: inputs[0].start, footageTo: inputs[inputs.count - 1].start, agency: "bench", user: "bench", reason: "evidence-preservation",
            justification: "bench", recipient: nil, grant: "owner", hold: nil, legalReference: "bench", prosecutorReference: nil, files: files, segments: [])
        try EvidencePackage.seal(manifest, in: package, key: key)
        return (ContinuousClock.now - start) / .seconds(1)
    }

    /// The bytes of a 10 s pre-roll of `stream`: its first ten seconds of packets.
    private func prerollBytes(_ stream: String) -> Double {
        guard let source = try? StreamSource(url: stream) else { return 0 }
        defer { source.close() }
        let timeBase = Double(source.video.timeBase.numerator) / Double(source.video.timeBase.denominator)
        var (bytes, first) = (0, Int64?.none)
        while let packet = try? source.read(), let dts = packet.dts {
            first = first ?? dts
            if Double(dts - first!) * timeBase >= 10 { break }
            bytes += packet.data.count
        }
        return Double(bytes)
    }
}
