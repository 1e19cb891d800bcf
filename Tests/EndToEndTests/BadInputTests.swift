import Foundation
import Testing

/// Random and mutated messages on the command endpoint, and random, mutated and slow requests on
/// the HTTP endpoints: structured errors, and the server keeps serving.
@Suite("vigil bus and HTTP endpoints under bad input", .serialized, .timeLimit(.minutes(2)))
struct BadInputTests {
    @Test func aFuzzRunLeavesTheServerServing() async throws {
        try await withServer { data, server in
            // 2,000 here; `make fuzz` sends 100,000.
            let fuzz = try await run(python, [repositoryRoot.appendingPathComponent("Benchmarks/fuzz_bus.py").path, data.path, "2000", "11"], timeout: .seconds(90))
            #expect(fuzz.status == 0, "\(fuzz.stdout) \(fuzz.stderr)")
            let report = try json(fuzz.stdout)
            #expect(report["served_after"] as? Bool == true)
            let codes = try #require(report["codes"] as? [String: Int])
            for code in ["bad_request", "bad_frames", "unknown_operation", "request_replayed"] {
                #expect((codes[code] ?? 0) > 0, "no \(code) in \(codes)")
            }
            #expect(codes["internal_error"] == nil, "\(codes)")
            #expect(server.isRunning)
            // The CLI is still served, and replays were audited.
            let exported = try await vigil("audit", "export", "--data", data.path)
            #expect(exported.stdout.contains("\"request.replayed\""))
            #expect(try await vigil("grant", "list", "--data", data.path, "--agency", "pz-5339").status == 0)
        }
    }

    @Test func aFuzzRunOnTheMediaEndpointLeavesItServing() async throws {
        try await withServer { data, server in
            // The relay's own endpoint and requests, as an agency (which may open no view).
            let fuzz = try await run(python, [repositoryRoot.appendingPathComponent("Benchmarks/fuzz_bus.py").path, data.path, "1000", "11", "media"], timeout: .seconds(90))
            #expect(fuzz.status == 0, "\(fuzz.stdout) \(fuzz.stderr)")
            let report = try json(fuzz.stdout)
            #expect(report["served_after"] as? Bool == true)
            let codes = try #require(report["codes"] as? [String: Int])
            for code in ["bad_request", "bad_frames", "unknown_operation", "named_user_required", "ticket_invalid"] {
                #expect((codes[code] ?? 0) > 0, "no \(code) in \(codes)")
            }
            #expect(codes["internal_error"] == nil, "\(codes)")
            #expect(server.isRunning)
        }
    }

    @Test func malformedAndSlowHTTPRequestsGetTheirStatusAndTheEndpointsKeepServing() async throws {
        try await withServer { data, server in
            // 1,500 here; `make fuzz` sends 20,000.
            let fuzz = try await run(python, [repositoryRoot.appendingPathComponent("Benchmarks/fuzz_http.py").path, data.path, "1500", "11"], timeout: .seconds(90))
            #expect(fuzz.status == 0, "\(fuzz.stdout) \(fuzz.stderr)")
            let report = try json(fuzz.stdout)
            // Every fixed case got its own status (a head over 8 KiB 431, one that never ends or
            // trickles 408, a bad request line or field 400, another method 405), and every
            // random request a documented one.
            #expect(report["failure_count"] as? Int == 0, "\(report["failures"] ?? "")")
            let statuses = try #require(report["statuses"] as? [String: Int])
            for status in ["400", "404", "405", "408", "431"] {
                #expect((statuses[status] ?? 0) > 0, "no \(status) in \(statuses)")
            }
            #expect(report["served_after"] as? Bool == true)
            #expect(server.isRunning)
        }
    }
}
