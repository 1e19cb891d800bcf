import Coordinator
import Foundation
import Incidents
import Testing

/// The coordinator's footage service removes the files of what the catalog deletes, and only those.
@Suite("Footage service: files follow the catalog")
struct FootageServiceTests {
    @Test func aSweepRemovesTheFilesOfExpiredFootageAndKeepsTheRest() async throws {
        try await InProcessCoordinator.with(agencies: [], footageBudget: 1 << 30) { coordinator in
            let footage = try #require(coordinator.server.footage)
            let directory = footage.configuration.directory
            let now = Date()
            var files: [String: URL] = [:]
            // A tunnel camera (30 days) recorded 40 days and 1 day ago.
            let tunnel = try #require(coordinator.server.engine.index.cameras.first { $0.owner == "bruxelles-mobilite" })
            for (name, age) in [("old", 40.0), ("recent", 1.0)] {
                let start = now - age * RetentionPolicy.day
                let file = "\(tunnel.id)/\(name).ts"
                let url = directory.appendingPathComponent(file)
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try Data(count: 188).write(to: url)
                files[name] = url
                try await footage.catalog.add(FootageSegment(
                    camera: tunnel.id, relay: FootageService.relayName, file: file, start: start, end: start + 6, bytes: 188, keyframes: [0], incidents: [1]))
            }
            try await footage.sweep(at: now)
            #expect(!FileManager.default.fileExists(atPath: try #require(files["old"]).path), "past retention: deleted")
            #expect(FileManager.default.fileExists(atPath: try #require(files["recent"]).path))
            let audited = try await coordinator.server.audit.entries(from: nil, to: nil).map(\.record).filter { $0.action == "footage.deleted" }
            #expect(audited.count == 1 && audited.first?.cameras == [tunnel.id])
        }
    }
}
