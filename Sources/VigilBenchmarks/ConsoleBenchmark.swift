import Foundation

/// `vigil bench console`: the operator console in a real browser (Debian's chromium, headless,
/// driven by `Benchmarks/console_bench.py` with Selenium): the map's readiness, the first picture
/// of a live tile after the operator asks, and a wall of 16 tiles of 640×360 at 25 fps played
/// for a minute, with the relay's added CPU. The cameras are looped files of ffmpeg's H.264 (a
/// keyframe every 2 s), so that the server's CPU is the relay's, not a simulator's encoding.
public struct ConsoleBenchmark {
    let vigil: String
    let ffmpeg: String
    let python: String
    let script: URL
    let seconds: Int

    public init(vigil: String, ffmpeg: String, python: String, script: URL, seconds: Int) {
        (self.vigil, self.ffmpeg, self.python, self.script, self.seconds) = (vigil, ffmpeg, python, script, seconds)
    }

    /// Sixteen cameras around the Bois de la Cambre's lake, where no fixture camera is.
    private static let cameras = (1...16).map { String(format: "pz5342-bench-wall-%02d", $0) }

    public func run() throws {
        let folder = try makeBenchFolder("console")
        defer { try? FileManager.default.removeItem(at: folder) }
        let stream = try StreamsBenchmark(ffmpeg: ffmpeg).makeStream(in: folder, name: "wall.ts", size: "640x360", seconds: 30, bitrate: "1M")
        Measurement.say("vigil bench console: headless chromium, \(Self.cameras.count) cameras of 640x360 H.264 at 25 fps (~1 Mbit/s), a keyframe every 2 s")

        let server = try BenchServer(vigil: vigil, name: "console", arguments: ["--no-recording"]) { server in
            let registry = server.data.appendingPathComponent("wall.csv")
            let rows = Self.cameras.enumerated().map { index, camera in
                "\(camera),pz-5342,street,square,\(String(format: "%.5f", 50.8130 + Double(index / 4) * 0.0004)),\(String(format: "%.5f", 4.3790 + Double(index % 4) * 0.0006)),,,40,\(stream),public,"
            }
            try (["id,owner,kind,place_type,lat,lon,heading_deg,fov_deg,range_m,stream,confidentiality,tags"] + rows + [""])
                .joined(separator: "\n").write(to: registry, atomically: true, encoding: .utf8)
            try server.run(["cameras", "import", registry.path])
        }
        try server.run(["user", "add", "bench.wall", "--name", "Bench", "--badge", "B-3", "--role", "operator", "--agency", "pz-5342"])
        let opened = try server.run(["incident", "open", "--kind", "public-order", "--at", "50.8136,4.3799", "--radius", "150", "--agency", "pz-5342",
                                     "--title", "Bench wall", "--json"])
        guard let reply = try JSONSerialization.jsonObject(with: opened) as? [String: Any],
              let incident = (reply["incident"] as? [String: Any])?["id"] as? Int,
              Set((reply["cameras"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }).isSuperset(of: Self.cameras)
        else { throw BenchSetupFailure("the bench's incident did not select its 16 cameras") }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script.path, vigil, server.data.path, "pz-5342", "bench.wall", "\(incident)", "\(server.process.processIdentifier)", "\(seconds)"]
            + Self.cameras
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONPATH"] = script.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(".build/python-packages").path
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let printed = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0, let figures = try JSONSerialization.jsonObject(with: printed) as? [String: Any] else {
            throw BenchSetupFailure("the browser's benchmark failed (\(script.lastPathComponent), status \(process.terminationStatus))")
        }
        report(figures)
    }

    private func report(_ figures: [String: Any]) {
        let ready = (figures["map_ready_ms"] as? [Int] ?? []).map(Double.init).sorted()
        let drawn = figures["cameras_drawn"] as? Int ?? 0
        print(Measurement.row("map ready (basemap and \(drawn) cameras), p50 of \(ready.count) loads", Measurement.percentile(ready, 0.5), unit: "ms", target: 1_000,
                              note: "from asking for the page; the cameras the agency may see"))
        let first = (figures["first_picture_ms"] as? [Int] ?? []).map(Double.init).sorted()
        print(Measurement.row("first picture in a tile after the operator asks, p50", Measurement.percentile(first, 0.5), unit: "ms", target: 300,
                              note: "\(first.count) cameras, one at a time; MediaMTX's browser player waits up to a GOP (2 s here)"))
        print(Measurement.row("first picture in a tile, worst", first.last ?? .nan, unit: "ms", target: nil))
        guard let wall = figures["wall"] as? [String: Any] else { return }
        let fps = (wall["fps"] as? [Double] ?? []).sorted()
        let tiles = wall["tiles"] as? Int ?? 0
        print(Measurement.row("tiles playing at once, for \(wall["seconds"] ?? 0) s", Double(tiles), unit: "tiles", target: 16, lowerIsBetter: false,
                              note: "\(wall["ended"] ?? 0) ended"))
        print(Measurement.row("frames shown per tile per second, slowest tile", fps.first ?? 0, unit: "fps", target: 24, lowerIsBetter: false,
                              note: "of 25; dropped by the browser: \((wall["dropped"] as? [Int] ?? []).reduce(0, +))"))
        let server = wall["server_cpu"] as? Double ?? .nan, baseline = wall["server_cpu_without_tiles"] as? Double ?? .nan
        print(Measurement.row("the relay's added CPU for the 16 tiles", (server - baseline) * 100, unit: "%", target: nil,
                              note: String(format: "of one core: %.1f %% with the tiles, %.1f %% with the same cameras live and no tile", server * 100, baseline * 100)))
        print(Measurement.row("the browser's CPU for the 16 tiles (reference)", (wall["browser_cpu"] as? Double ?? .nan) * 100, unit: "%", target: nil,
              note: "of one core: software decoding in headless chromium"))
    }
}
