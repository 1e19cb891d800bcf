import Foundation
import Testing

/// The Prometheus endpoint: messages in and out, authentication failures, refused subscriptions, command latency.
@Suite("vigil metrics", .serialized, .timeLimit(.minutes(2)))
struct MetricsTests {
    @Test func prometheusTextCountsWhatTheBusDid() async throws {
        try await withServer { data, _ in
            let probe = repositoryRoot.appendingPathComponent("Tests/python/curve_probe.py").path
            let serverInfo = data.appendingPathComponent("server.json").path
            let serverKey = data.appendingPathComponent("keys/server.key").path
            _ = try await run(python, [probe, serverInfo, serverKey, "random"])
            _ = try await run(python, [probe, serverInfo, serverKey, data.appendingPathComponent("keys/agencies/siamu.key_secret").path])
            #expect(try await vigil("grant", "list", "--data", data.path).status == 0)
            // A client with the wrong server key fails its handshake before ZAP: the socket monitor sees it.
            let wrongKey = try await run(python, [repositoryRoot.appendingPathComponent("Tests/python/wrong_server_key.py").path, serverInfo])
            #expect(try json(wrongKey.stdout)["replied"] as? Bool == false)

            let info = try json(String(decoding: try Data(contentsOf: data.appendingPathComponent("server.json")), as: UTF8.self))
            let url = try #require(info["metrics"] as? String)
            let fetch = """
                import sys, urllib.request, urllib.error
                print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())
                try:
                    urllib.request.urlopen(sys.argv[1].replace("/metrics", "/other"), timeout=5)
                except urllib.error.HTTPError as error:
                    print("other:", error.code)
                """
            let scraped = try await run(python, ["-c", fetch, url])
            #expect(scraped.status == 0, "\(scraped.stderr)")
            var values: [String: Double] = [:]
            for line in scraped.stdout.split(separator: "\n") where !line.hasPrefix("#") {
                let parts = line.split(separator: " ")
                if parts.count == 2, let value = Double(parts[1]) { values[String(parts[0])] = value }
            }
            #expect((values[#"vigil_bus_messages_in_total{endpoint="command"}"#] ?? 0) >= 2, "\(scraped.stdout)")
            #expect((values[#"vigil_bus_messages_out_total{endpoint="command"}"#] ?? 0) >= 2)
            #expect((values[#"vigil_bus_messages_out_total{endpoint="events"}"#] ?? 0) >= 1, "heartbeats at least")
            #expect((values["vigil_bus_authentication_failures_total"] ?? 0) >= 1)
            #expect((values["vigil_bus_subscriptions_refused_total"] ?? 0) >= 1)
            #expect((values["vigil_bus_snapshots_total"] ?? 0) >= 1)
            #expect((values["vigil_bus_command_duration_seconds_count"] ?? 0) >= 2)
            #expect(values[#"vigil_bus_command_duration_seconds_bucket{le="0.00005"}"#] != nil, "the latency buckets start at 50 µs")
            #expect(scraped.stdout.contains("other: 404"))

            // Prometheus's own linter passes (HELP on every metric, names, types), and what an
            // operator watches is there from the start.
            let exposition = data.appendingPathComponent("metrics.txt")
            try Data(scraped.stdout.split(separator: "\n").filter { !$0.hasPrefix("other:") }.joined(separator: "\n").utf8 + [10]).write(to: exposition)
            let linted = try await run(URL(fileURLWithPath: "/bin/sh"), ["-c", "/usr/bin/promtool check metrics < \"$0\"", exposition.path])
            #expect(linted.status == 0 && linted.stdout.isEmpty && linted.stderr.isEmpty, "promtool: \(linted.stdout) \(linted.stderr)")
            for name in ["vigil_open_incidents", "vigil_evidence_holds", "vigil_relay_live_feeds", "vigil_relay_viewers", "vigil_grant_expiries_total",
                         "vigil_relay_bytes_sent_total", "vigil_relay_packets_dropped_total", "process_cpu_seconds_total",
                         "process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds"] {
                #expect(values[name] != nil, "\(name) is exported")
            }
            #expect(values.keys.contains { $0.hasPrefix("vigil_build_info{version=") }, "the build's version")
            #expect((values["process_resident_memory_bytes"] ?? 0) > 1_000_000 && (values["process_open_fds"] ?? 0) > 3)
            let audit = try await vigil("audit", "export", "--data", data.path)
            let refusals = try audit.stdout.split(separator: "\n").compactMap { try json(String($0))["record"] as? [String: Any] }
                .filter { $0["action"] as? String == "auth.refused" }.compactMap { $0["reason"] as? String }
            #expect(Set(refusals) == ["unknown_key", "handshake_failed"], "\(refusals)")
        }
    }
}
