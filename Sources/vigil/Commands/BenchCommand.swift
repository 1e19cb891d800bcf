import ArgumentParser
import Bus
import VigilBenchmarks
import Foundation

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure Vigil's figures and print each beside its target (build with -c release).",
        subcommands: [Geo.self, BusFigures.self, StreamFigures.self, RelayFigures.self, FootageFigures.self, ConsoleFigures.self, FailoverFigures.self, SitesFigures.self])

    struct Geo: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The geospatial engine: selections on the Brussels fixture, and a generated 1,000,000-camera registry beside shapely.")

        @Option(help: "Queries per figure.")
        var queries = 10_000

        @Option(help: "Cameras in the generated registry.")
        var cameras = 1_000_000

        @Option(help: "The Python with shapely, for the reference figures.")
        var python = "/usr/bin/python3"

        @Option(help: "The fixtures folder (default: ./fixtures, else the checkout's).")
        var fixtures: String?

        func validate() throws {
            guard (100...1_000_000).contains(queries) else { throw ValidationError("--queries must be 100 to 1000000") }
            guard (1_000...5_000_000).contains(cameras) else { throw ValidationError("--cameras must be 1000 to 5000000") }
        }

        @OptionGroup var output: BenchOutputOptions

        func run() throws {
            output.apply()
            try GeoBenchmark(fixtures: try Deployment.fixturesFolder(fixtures), queries: queries, largeCount: cameras, python: python).run()
        }
    }

    struct BusFigures: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bus",
            abstract: "The bus over CURVE on loopback: command round trips, fan-out to many agency clients, channel events per second, and raw libzmq PUB/SUB beside it.")

        @Option(help: "Command round trips to time.")
        var requests = 10_000
        @Option(help: "Subscribed agency clients for the fan-out figure.")
        var subscribers = 1_000
        @Option(help: "Events for the throughput figures.")
        var events = 200_000
        @Option(help: "The NATS peer (Benchmarks/nats, built by make bench); its figures and the ratios are printed when it is there.")
        var natsBench = NATSPeer.defaultBinary

        func validate() throws {
            guard (100...1_000_000).contains(requests), (1...5_000).contains(subscribers), (1_000...5_000_000).contains(events) else {
                throw ValidationError("--requests 100–1000000, --subscribers 1–5000, --events 1000–5000000")
            }
        }

        @OptionGroup var output: BenchOutputOptions

        func run() throws {
            output.apply()
            Measurement.say("vigil bench bus: CURVE on, loopback, \(ProcessInfo.processInfo.activeProcessorCount) cores; medians of rounds where there are rounds")
            let roundTrips = try (0..<5).map { _ in try BusBenchmark.commandRoundTrips(count: requests / 5) }
            print(Measurement.row("command round trip p50", Measurement.median(of: roundTrips, percentile: 0.5), unit: "µs", target: 150))
            print(Measurement.row("command round trip p99", Measurement.median(of: roundTrips, percentile: 0.99), unit: "µs", target: 1_000))
            let raw = try BusBenchmark.rawRoundTrips(count: requests)
            print(Measurement.row("raw libzmq ROUTER/DEALER with CURVE, p50 (reference)", Measurement.percentile(raw, 0.5), unit: "µs", target: nil))
            // The same server and client in one process: what the bus costs without CURVE and TCP.
            let inProcess = try BusBenchmark.commandRoundTrips(count: requests, inProcess: true)
            print(Measurement.row("command round trip in process (inproc://), p50", Measurement.percentile(inProcess, 0.5), unit: "µs", target: nil))

            // With the NATS peer there, the fan-out is measured in pairs, Vigil's rounds then
            // NATS's, one after the other: the ratio is the median of the pairs' ratios, so that
            // the load of the machine, which drifts over a run, weighs alike on both sides.
            let natsThere = FileManager.default.isExecutableFile(atPath: natsBench)
            var rounds: [[Double]] = []
            var pairRatios: [Double] = []
            var natsFanOuts: [Double] = []
            for _ in 0..<(natsThere ? Self.pairs : 1) {
                let vigilRounds = try BusBenchmark.fanOut(subscribers: subscribers, rounds: 20)
                rounds += vigilRounds
                guard natsThere else { continue }
                guard let natsFanOut = try NATSPeer.measure(binary: natsBench, .fanOut, subscribers: subscribers)["nats_fanout_p99"] else {
                    throw BenchSetupFailure("the NATS peer printed no fan-out figure")
                }
                natsFanOuts.append(natsFanOut)
                pairRatios.append(Measurement.median(of: vigilRounds, percentile: 0.99) / 1_000 / natsFanOut)
            }
            let reached = rounds.map(\.count).min() ?? 0
            let fanOutP99 = Measurement.median(of: rounds, percentile: 0.99) / 1_000
            let fanOutP50 = Measurement.median(of: rounds, percentile: 0.5) / 1_000
            print(Measurement.row("one update to \(subscribers) agency clients, p50", fanOutP50, unit: "ms", target: nil))
            print(Measurement.row("one update to \(subscribers) agency clients, p99", fanOutP99, unit: "ms", target: 10,
                                  note: reached < subscribers ? "only \(reached) reached in a round" : nil))
            let rawRounds = try BusBenchmark.rawFanOut(subscribers: subscribers, rounds: 20)
            let rawP99 = Measurement.median(of: rawRounds, percentile: 0.99) / 1_000
            print(Measurement.row("raw libzmq PUB with CURVE to the same clients, p99", rawP99, unit: "ms", target: nil, note: "reference"))

            // Events per second in pairs too, Vigil's then NATS's (whose run also times its round trips).
            var batchedRuns: [(perSecond: Double, received: Int)] = []
            var natsRuns: [[String: Double]] = []
            var eventRatios: [Double] = []
            for _ in 0..<(natsThere ? Self.pairs : 1) {
                let batched = try BusBenchmark.busThroughput(count: events, batched: true)
                batchedRuns.append(batched)
                guard natsThere else { continue }
                let nats = try NATSPeer.measure(binary: natsBench, .messaging, roundTrips: requests, events: events)
                guard nats["nats_round_trip_p50"] != nil, let natsEvents = nats["nats_events_per_second"] else {
                    throw BenchSetupFailure("the NATS peer printed no figures")
                }
                natsRuns.append(nats)
                eventRatios.append(batched.perSecond / natsEvents)
            }
            let bus = batchedRuns.sorted { $0.perSecond < $1.perSecond }[batchedRuns.count / 2]
            let unbatched = try BusBenchmark.busThroughput(count: events)
            let rawEvents = try BusBenchmark.rawThroughput(count: events)
            let dropped = batchedRuns.map { events - $0.received }.max() ?? 0
            print(Measurement.row("channel events per second to one subscriber (batch:)", bus.perSecond, unit: "ev/s", target: 100_000, lowerIsBetter: false,
                                  note: dropped > 0 ? "\(dropped) dropped in a run" : "a batched subscription, split by the client; median of \(batchedRuns.count) runs"))
            print(Measurement.row("  the same, one event per message", unbatched.perSecond, unit: "ev/s", target: nil,
                                  note: unbatched.received < events ? "\(events - unbatched.received) dropped" : "a plain subscription"))
            print(Measurement.row("raw libzmq PUB/SUB with CURVE, same events", rawEvents.perSecond, unit: "ev/s", target: nil,
                                  note: rawEvents.received < events ? "\(events - rawEvents.received) dropped" : "reference"))
            print(Measurement.row("bus / raw (one event per message both)", unbatched.perSecond / rawEvents.perSecond, unit: "", target: 0.5, lowerIsBetter: false))
            let roundTrip = Measurement.median(of: roundTrips, percentile: 0.5)
            print(Measurement.row("command round trip p50, x raw libzmq with CURVE", roundTrip / Measurement.percentile(raw, 0.5), unit: "x", target: 1.3))

            guard natsThere else {
                Measurement.say("  (no NATS peer at \(natsBench): make bench builds it and installs nats-server)")
                return
            }
            func natsMedian(_ key: String) -> Double { Measurement.median(natsRuns.compactMap { $0[key] }) }
            let (natsRoundTrip, natsEvents) = (natsMedian("nats_round_trip_p50"), natsMedian("nats_events_per_second"))
            let natsDropped = natsRuns.compactMap { $0["nats_events_received"].map { events - Int($0) } }.max() ?? 0
            print(Measurement.row("NATS with TLS: request/reply p50 (ref.)", natsRoundTrip, unit: "µs", target: nil, note: "median of \(natsRuns.count) runs"))
            print(Measurement.row("NATS with TLS: events per second to one subscriber (ref.)", natsEvents, unit: "ev/s", target: nil,
                                  note: natsDropped > 0 ? "\(natsDropped) dropped in a run" : "lossless; median of \(natsRuns.count) runs, each beside one of Vigil's"))
            print(Measurement.row("NATS with TLS: one event to \(subscribers) subscribers, p99 (ref.)", Measurement.median(natsFanOuts), unit: "ms",
                                  target: nil, note: "median of \(natsFanOuts.count) runs, each beside one of Vigil's"))
            print(Measurement.row("command round trip p50, x NATS with TLS", roundTrip / natsRoundTrip, unit: "x", target: 1.0))
            print(Measurement.row("events/s to one subscriber, x NATS with TLS", Measurement.median(eventRatios), unit: "x", target: 1.0,
                                  lowerIsBetter: false, note: "median of the pairs " + Measurement.listed(eventRatios)))
            print(Measurement.row("one event to \(subscribers) subscribers p99, x NATS with TLS", Measurement.median(pairRatios), unit: "x", target: 1.0,
                                  note: "median of the pairs " + Measurement.listed(pairRatios)))
        }

        /// Vigil's fan-out (and events per second) and NATS's, one after the other, this many times.
        static let pairs = 5
    }

    struct StreamFigures: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "streams",
            abstract: "The relay on a real H.264 stream: late joiners with and without the GOP cache, added latency, fan-out CPU, memory per camera.")

        @Option(help: "The ffmpeg that makes the test stream.")
        var ffmpeg = "/usr/bin/ffmpeg"

        @OptionGroup var output: BenchOutputOptions

        func run() throws {
            output.apply()
            try StreamsBenchmark(ffmpeg: ffmpeg).run()
        }
    }

    struct RelayFigures: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "relay",
            abstract: "The relay beside nginx-rtmp in one run: CPU per Gbit to N viewers (links and CURVE), a late joiner's first keyframe, a slow viewer's lateness.",
            discussion: "nginx comes from Debian's nginx and libnginx-mod-rtmp (`make bench` installs them); without them only Vigil's figures are printed.")

        @Option(help: "The ffmpeg that makes the test stream and feeds nginx-rtmp.")
        var ffmpeg = "/usr/bin/ffmpeg"

        @Option(help: "Viewers of the one camera.")
        var viewers = 200

        @OptionGroup var output: BenchOutputOptions

        func validate() throws {
            guard (2...2_000).contains(viewers) else { throw ValidationError("--viewers must be 2 to 2000") }
        }

        func run() throws {
            output.apply()
            // Vigil is measured as a server of this very binary.
            let vigil = BenchOutputOptions.thisBinary
            try RelayBenchmark(vigil: vigil, ffmpeg: ffmpeg, viewers: viewers).run()
        }
    }

    struct FootageFigures: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "footage",
            abstract: "Recording and evidence: the CPU recording adds to serving, playback's first picture, an export's speed.")

        @Option(help: "The ffmpeg that makes and segments the test stream.")
        var ffmpeg = "/usr/bin/ffmpeg"

        @Option(help: "Live cameras served and recorded.")
        var cameras = 50

        @OptionGroup var output: BenchOutputOptions

        func validate() throws {
            guard (1...500).contains(cameras) else { throw ValidationError("--cameras must be 1 to 500") }
        }

        func run() throws {
            output.apply()
            // Playback is measured through a server of this very binary.
            let vigil = BenchOutputOptions.thisBinary
            try FootageBenchmark(ffmpeg: ffmpeg, cameras: cameras, vigil: vigil).run()
        }
    }

    struct FailoverFigures: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "failover",
            abstract: "Three coordinators (vigil serve --cluster) on 127.0.0.1-3, a relay node, a viewer and a client; the leader killed: how long until changes and everyone are served again, what was lost.")

        @Option(help: "Rounds, each with a new cluster.")
        var rounds = 3
        @OptionGroup var output: BenchOutputOptions

        func validate() throws {
            guard (1...20).contains(rounds) else { throw ValidationError("--rounds must be 1 to 20") }
        }

        func run() throws {
            output.apply()
            try FailoverBenchmark(vigil: BenchOutputOptions.thisBinary, rounds: rounds).run()
        }
    }

    struct SitesFigures: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sites",
            abstract: "An origin relay node at a camera owner's site and edge nodes at 3 others; 100 viewers of one camera: the streams that leave the owner's site, with and without edges.")

        @Option(help: "Viewers of the camera, spread over the 3 edge sites.")
        var viewers = 100
        @Option(help: "Seconds the streams leaving the origin are counted, each way.")
        var seconds = 10
        @OptionGroup var output: BenchOutputOptions

        func validate() throws {
            guard (3...500).contains(viewers) else { throw ValidationError("--viewers must be 3 to 500") }
            guard (2...300).contains(seconds) else { throw ValidationError("--seconds must be 2 to 300") }
        }

        func run() throws {
            output.apply()
            try SitesBenchmark(vigil: BenchOutputOptions.thisBinary, viewers: viewers, seconds: seconds).run()
        }
    }

    struct ConsoleFigures: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "console",
            abstract: "The operator console in headless chromium: the map's readiness, a live tile's first picture, 16 tiles for a minute and the relay's added CPU.")

        @Option(help: "Seconds the wall of 16 tiles plays.")
        var seconds = 60
        @Option(help: "ffmpeg, to make the cameras' stream.")
        var ffmpeg = "/usr/bin/ffmpeg"
        @Option(help: "The Python with Selenium (scripts/setup puts it in .build/python-packages).")
        var python = "/usr/bin/python3"
        @OptionGroup var output: BenchOutputOptions

        func validate() throws {
            guard (5...600).contains(seconds) else { throw ValidationError("--seconds must be 5 to 600") }
        }

        func run() throws {
            output.apply()
            let script = try Deployment.fixturesFolder(nil).deletingLastPathComponent().appendingPathComponent("Benchmarks/console_bench.py")
            let vigil = BenchOutputOptions.thisBinary
            try ConsoleBenchmark(vigil: vigil, ffmpeg: ffmpeg, python: python, script: script, seconds: seconds).run()
        }
    }
}

/// What every benchmark prints its figures as, and the binary that runs it (a benchmark that
/// starts servers starts this very `vigil`).
struct BenchOutputOptions: ParsableArguments {
    @Flag(help: "Print each figure as one JSON object per line (figure, value, unit, target, met, note); other lines go to standard error.")
    var json = false

    func apply() {
        Measurement.use(json ? .json : .text)
    }

    static var thisBinary: String { Bundle.main.executablePath ?? CommandLine.arguments[0] }
}
