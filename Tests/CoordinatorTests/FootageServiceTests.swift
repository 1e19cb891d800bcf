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

    @Test func segmentsACrashLeftOutsideTheCatalogAreAdoptedSoThatRetentionDeletesThem() async throws {
        try await InProcessCoordinator.with(agencies: [], footageBudget: 1 << 30) { coordinator in
            let footage = try #require(coordinator.server.footage)
            let directory = footage.configuration.directory
            let tunnel = try #require(coordinator.server.engine.index.cameras.first { $0.owner == "bruxelles-mobilite" })
            let start = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 - 40 * RetentionPolicy.day).rounded())
            let folder = directory.appendingPathComponent(tunnel.id.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(["-", "_"]))!)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            // A real segment (H.264 by ffmpeg) the server never recorded, and a file that is no footage.
            let orphan = folder.appendingPathComponent("\(Int64(start.timeIntervalSince1970 * 1000)).ts")
            let ffmpeg = Process()
            ffmpeg.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
            ffmpeg.arguments = ["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "2",
                                "-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p", "-f", "mpegts", orphan.path]
            try ffmpeg.run()
            ffmpeg.waitUntilExit()
            let garbage = folder.appendingPathComponent("\(Int64(start.timeIntervalSince1970 * 1000) + 6_000).ts")
            try Data("not a stream".utf8).write(to: garbage)

            try await footage.adoptUnknownSegments()
            #expect(!FileManager.default.fileExists(atPath: garbage.path))
            let adopted = try await footage.catalog.segments(camera: tunnel.id, from: start, to: start + 10)
            #expect(adopted.count == 1 && adopted.first.map { abs($0.end.timeIntervalSince($0.start) - 2) < 0.2 && $0.keyframes.first == 0 } == true, "\(adopted)")
            // Adopted, its retention applies: 40 days past a tunnel's 30, it goes.
            try await footage.sweep()
            #expect(!FileManager.default.fileExists(atPath: orphan.path))
            let actions = try await coordinator.server.audit.entries(from: nil, to: nil).map(\.record.action)
            #expect(actions.contains("footage.recovered") && actions.contains("footage.deleted"))
        }
    }
}
