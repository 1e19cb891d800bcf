import Foundation
import Synchronization
import Glibc

/// Latency percentiles of repeated calls, and the table the benchmarks print.
public enum Measurement {
    /// Runs `body` once per input and returns the sorted durations in microseconds.
    public static func latencies<Input>(_ inputs: [Input], _ body: (Input) throws -> Void) rethrows -> [Double] {
        let clock = ContinuousClock()
        var durations: [Double] = []
        durations.reserveCapacity(inputs.count)
        for input in inputs {
            let start = clock.now
            try body(input)
            let elapsed = clock.now - start
            durations.append(elapsed / .microseconds(1))
        }
        return durations.sorted()
    }

    /// The p50 of `rounds` separate runs over `inputs`, then the median of those: a burst of
    /// load from a neighbour on a shared host spoils one round, not the figure.
    public static func medianP50<Input>(rounds: Int = 5, _ inputs: [Input], _ body: (Input) throws -> Void) rethrows -> (p50: Double, p99: Double, best: Double) {
        let runs = try (0..<rounds).map { _ in try latencies(inputs, body) }
        return (median(of: runs, percentile: 0.5), median(of: runs, percentile: 0.99), runs.map { percentile($0, 0.5) }.min() ?? .nan)
    }

    /// The median over `rounds` (each sorted) of each round's `fraction` percentile.
    public static func median(of rounds: [[Double]], percentile fraction: Double) -> Double {
        percentile(rounds.map { percentile($0, fraction) }.sorted(), 0.5)
    }

    /// The median of `values`, in any order.
    public static func median(_ values: [Double]) -> Double {
        percentile(values.sorted(), 0.5)
    }

    /// `values` as a note lists them (the rounds or pairs a median comes from): two decimals each.
    public static func listed(_ values: [Double]) -> String {
        values.map { String(format: "%.2f", $0) }.joined(separator: ", ")
    }

    public static func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
        sorted.isEmpty ? .nan : sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))]
    }

    /// The process's resident memory in bytes (from /proc/self/statm), for memory-per-item figures.
    public static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
              let pages = text.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
        else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// How figures are printed: aligned text for people, or one JSON object per figure
    /// (`vigil bench … --json`; the other lines then go to standard error).
    public enum Format: Sendable {
        case text, json
    }

    private static let format = Mutex(Format.text)

    /// Prints the figures as `format` from now on (set once, before a benchmark runs).
    public static func use(_ format: Format) {
        self.format.withLock { $0 = format }
    }

    /// A line that is not a figure (a heading, a remark): standard output as text, standard error under JSON.
    public static func say(_ line: String) {
        if format.withLock({ $0 }) == .json {
            FileHandle.standardError.write(Data((line + "\n").utf8))
        } else {
            print(line)
        }
    }

    /// One printed figure: the measurement, the target, whether it is met, and the best round.
    public static func row(_ figure: String, _ measured: (p50: Double, p99: Double, best: Double), unit: String, target: Double?) -> String {
        row(figure, measured.p50, unit: unit, target: target, best: measured.best)
    }

    /// A figure as JSON: what `--json` prints for each.
    private struct Figure: Encodable {
        var figure: String
        var value: Double
        var unit: String
        var target: Double?
        var lowerIsBetter: Bool?
        var met: Bool?
        var best: Double?
        var note: String?
    }

    /// One printed figure: the measurement, the target, and whether it is met; `note` says what
    /// the figure is (a reference, what was dropped).
    public static func row(
        _ figure: String, _ measured: Double, unit: String, target: Double?, lowerIsBetter: Bool = true, best: Double? = nil, note: String? = nil
    ) -> String {
        let met = target.map { lowerIsBetter ? measured <= $0 : measured >= $0 }
        if format.withLock({ $0 }) == .json {
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let entry = Figure(
                figure: figure, value: measured.isFinite ? measured : 0, unit: unit, target: target, lowerIsBetter: target == nil ? nil : lowerIsBetter,
                met: met, best: best, note: note)
            return (try? encoder.encode(entry)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        }
        let value = String(format: measured >= 100 ? "%.0f" : "%.2f", measured)
        let suffix = (best.map { String(format: "  (best round %.2f)", $0) } ?? "") + (note.map { "  (\($0))" } ?? "")
        guard let target, let met else { return "  \(figure.padding(toLength: 52, withPad: " ", startingAt: 0)) \(value) \(unit)" + suffix }
        let targetText = String(format: target >= 100 ? "%.0f" : "%.2f", target)
        return "  \(figure.padding(toLength: 52, withPad: " ", startingAt: 0)) \(value.padding(toLength: 9, withPad: " ", startingAt: 0)) \(unit.padding(toLength: 6, withPad: " ", startingAt: 0)) "
            + "target \(lowerIsBetter ? "≤" : "≥") \(targetText) \(unit)  \(met ? "met" : "NOT MET")" + suffix
    }
}
