import Coordinator
import CoreMetrics
import Foundation
import Glibc
import Prometheus

/// swift-metrics to Prometheus with each metric's help text from `MetricsCatalog` (the
/// swift-prometheus factory has none to give), so that `promtool check metrics` passes.
struct DocumentedMetricsFactory: MetricsFactory {
    let registry: PrometheusCollectorRegistry
    /// Its buckets, and the destroy methods.
    var prometheus: PrometheusMetricsFactory

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        prometheus = PrometheusMetricsFactory(registry: registry)
    }

    private func descriptor(_ label: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: label, unitName: "", helpText: MetricsCatalog.help[label] ?? "")
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else { return registry.makeGauge(descriptor: descriptor(label), labels: dimensions) }
        let buckets = prometheus.valueHistogramBuckets[label] ?? prometheus.defaultValueHistogramBuckets
        return registry.makeValueHistogram(descriptor: descriptor(label), labels: dimensions, buckets: buckets)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        let buckets = prometheus.durationHistogramBuckets[label] ?? prometheus.defaultDurationHistogramBuckets
        return registry.makeDurationHistogram(descriptor: descriptor(label), labels: dimensions, buckets: buckets)
    }

    func destroyCounter(_ handler: any CounterHandler) { prometheus.destroyCounter(handler) }
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { prometheus.destroyFloatingPointCounter(handler) }
    func destroyRecorder(_ handler: any RecorderHandler) { prometheus.destroyRecorder(handler) }
    func destroyMeter(_ handler: any MeterHandler) { prometheus.destroyMeter(handler) }
    func destroyTimer(_ handler: any TimerHandler) { prometheus.destroyTimer(handler) }
}

/// The standard process metrics (the names every Prometheus client library exports), read from
/// `/proc` at each scrape.
enum ProcessMetrics {
    static func text() -> String {
        var lines: [String] = []
        func metric(_ name: String, _ type: String, _ help: String, _ value: Double?) {
            guard let value else { return }
            lines += ["# HELP \(name) \(help)", "# TYPE \(name) \(type)", "\(name) \(value)"]
        }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        // /proc/self/stat: the fields after the command's closing parenthesis, from field 3 (state) on.
        let stat = (try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8)).flatMap { text in
            text.range(of: ")", options: .backwards).map { text[$0.upperBound...].split(separator: " ").map(String.init) }
        } ?? []
        func field(_ number: Int) -> Double? { stat.count > number - 3 ? Double(stat[number - 3]) : nil }
        let bootTime = (try? String(contentsOfFile: "/proc/stat", encoding: .utf8))?.split(separator: "\n")
            .first { $0.hasPrefix("btime ") }.flatMap { Double($0.dropFirst(6)) }
        let cpu = zip(field(14), field(15)).map { ($0 + $1) / ticks }
        metric("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", cpu)
        metric("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", field(24).map { $0 * Double(sysconf(Int32(_SC_PAGESIZE))) })
        metric("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", field(23))
        metric("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
               zip(bootTime, field(22)).map { $0 + $1 / ticks })
        let descriptors = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count
        metric("process_open_fds", "gauge", "Number of open file descriptors.", descriptors.map(Double.init))
        var limit = rlimit()
        metric("process_max_fds", "gauge", "Maximum number of open file descriptors.", getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 ? Double(limit.rlim_cur) : nil)
        return lines.joined(separator: "\n") + "\n"
    }
}

private func zip(_ a: Double?, _ b: Double?) -> (Double, Double)? {
    guard let a, let b else { return nil }
    return (a, b)
}
