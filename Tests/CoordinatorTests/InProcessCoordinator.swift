import Bus
import Coordinator
import Crypto
import Foundation
import Geo
import Incidents
import Logging
import ServiceLifecycle
import Testing
import TestSupport

/// A coordinator running in the test process over a temporary database with the Brussels
/// fixtures, and one in-process bus client configuration per identity: no process, no CURVE,
/// nothing to poll for but the events themselves.
struct InProcessCoordinator {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fixtures")

    let server: VigilServer
    let clients: [String: BusClientConfiguration]

    static func configuration(database: String) throws -> VigilServer.Configuration {
        let fixtures = Self.fixtures
        return VigilServer.Configuration(
            databasePath: database,
            bus: BusServerConfiguration(
                commandEndpoint: "tcp://127.0.0.1:0", eventEndpoint: "tcp://127.0.0.1:0", serverKeys: try CurveKeyPair.generate(),
                heartbeatInterval: .milliseconds(100), mediaEndpoint: "tcp://127.0.0.1:0"),
            linksHost: HostAddress("127.0.0.1")!, linksPort: 0, crs: .belgianLambert2008,
            roads: { _ in nil },
            initialRegistry: {
                (try CameraRegistryFile.read(contentsOf: fixtures.appendingPathComponent("brussels/cameras.geojson")),
                 try RegistryFixture.read(contentsOf: fixtures.appendingPathComponent("agencies.json")))
            },
            initialAgreements: {
                try AgreementFixture.read(
                    contentsOf: fixtures.appendingPathComponent("agreements.json"),
                    policeZones: try AgreementFixture.policeZones(contentsOf: fixtures.appendingPathComponent("sources/brussels_police_zones.geojson")),
                    validFrom: Date(timeIntervalSince1970: 0))
            },
            newAgencyKeys: { agencies in
                Dictionary(uniqueKeysWithValues: try agencies.map { (try CurveKeyPair.generate().publicKey, $0) })
            },
            auditSigningKey: Curve25519.Signing.PrivateKey().rawRepresentation)
    }

    /// Runs `body` with a started coordinator and a client configuration for each agency (recording
    /// footage into the test's folder when `footageBudget` is given).
    static func with(agencies: [String], footageBudget: Int? = nil, _ body: (InProcessCoordinator) async throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-inprocess-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        var logger = Logger(label: "vigil.test")
        logger.logLevel = .warning
        var configuration = try configuration(database: folder.appendingPathComponent("vigil.sqlite").path)
        configuration.footage = footageBudget.map { FootageService.Configuration(
            directory: folder.appendingPathComponent("footage"), exports: folder.appendingPathComponent("exports"), budgetBytes: $0) }
        let server = try await VigilServer(configuration, logger: logger)
        var clients: [String: BusClientConfiguration] = [:]
        for agency in agencies { clients[agency] = try server.attachInProcess(as: BusIdentity(agency: agency)) }
        _ = try server.start()
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: server.services, logger: logger))
        let running = Task { try await group.run() }
        defer { server.stop() }
        do {
            try await body(InProcessCoordinator(server: server, clients: clients))
        } catch {
            await group.triggerGracefulShutdown()
            _ = try? await running.value
            throw error
        }
        await group.triggerGracefulShutdown()
        try await running.value
    }

    /// A client of `agency` (close it when done).
    func client(_ agency: String) throws -> BusClient {
        try BusClient(configuration: try #require(clients[agency], "no client attached for \(agency)"))
    }
}

/// Requests and events as plain JSON, for tests that read what a client would.
extension BusClient {
    /// The reply's result, as JSON.
    func call(_ operation: String, _ body: [String: Any]) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: requestJSON(operation, body)) as? [String: Any] ?? [:]
    }

    /// The reply's result as JSON bytes, or the error it carried.
    func requestJSON(_ operation: String, _ body: [String: Any]) throws -> Data {
        let id = "test-\(UUID().uuidString)"
        let request = try JSONSerialization.data(withJSONObject: ["v": 1, "id": id, "op": operation, "body": body])
        let reply = try JSONSerialization.jsonObject(with: try requestRaw([request], timeout: .seconds(10))) as? [String: Any] ?? [:]
        if let error = reply["error"] as? [String: Any] {
            throw BusClientError.remote(BusProtocol.ErrorBody(
                code: error["code"] as? String ?? "", message: error["message"] as? String ?? "", field: error["field"] as? String))
        }
        return try JSONSerialization.data(withJSONObject: reply["result"] ?? [:], options: [.fragmentsAllowed])
    }

    /// Subscribes to `topics`, and returns once a heartbeat proves the subscriptions are live.
    func subscribeAndWait(_ topics: [String]) throws {
        for topic in topics + [BusProtocol.heartbeatTopic] { try subscribe(topic) }
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if try nextEvent(timeout: .milliseconds(200))?.topic == BusProtocol.heartbeatTopic { return }
        }
        throw BusClientError.serverUnreachable(endpoint: "heartbeat", seconds: 10)
    }

    /// The events other than heartbeats that arrive within `window`.
    func events(within window: Duration) throws -> [BusEvent] {
        var events: [BusEvent] = []
        let deadline = ContinuousClock.now + window
        while ContinuousClock.now < deadline {
            if let event = try nextEvent(timeout: .milliseconds(100)), event.topic != BusProtocol.heartbeatTopic { events.append(event) }
        }
        return events
    }
}
