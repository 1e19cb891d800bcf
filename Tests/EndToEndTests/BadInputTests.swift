import Foundation
import Testing

/// Random and mutated messages on the command endpoint: structured errors, and the server keeps serving.
@Suite("vigil bus under bad input", .serialized, .timeLimit(.minutes(2)))
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
}
