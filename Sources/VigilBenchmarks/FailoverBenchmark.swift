import Bus
import Foundation
import Glibc
import VigilProtocol

/// `vigil bench failover`: three `vigil serve --cluster` coordinators on 127.0.0.1, .2 and .3 (one
/// loopback address each, the same ports), a relay node serving every camera, a viewer watching
/// one of them through the node, and a client changing an incident as fast as it is answered.
/// The leader is killed with SIGKILL; each round measures how long until changes are accepted
/// again, until the client and the relay node are served again, the view's longest gap, and
/// whether any acknowledged change or the audit chain was lost. Each figure beside its target.
public struct FailoverBenchmark {
    let vigil: String
    let rounds: Int

    public init(vigil: String, rounds: Int) {
        self.vigil = vigil
        self.rounds = rounds
    }

    struct Round {
        var acceptedAgain: Double
        var clientServedAgain: Double
        var relayServedAgain: Double
        var viewGap: Double
        var viewInterrupted: Bool
        var acknowledged: Int
        var lost: Int
        var chainIntact: Bool
        var changeRoundTrips: [Double]
        var viewerMoved: Double
    }

    public func run() throws {
        Measurement.say("vigil bench failover: 3 coordinators (vigil serve --cluster, dqlite) on 127.0.0.1-3, a relay node, a viewer, a client changing an incident; the leader killed (SIGKILL), \(rounds) rounds")
        var results: [Round] = []
        for round in 1...rounds {
            let result = try self.round()
            Measurement.say(String(
                format: "  round %d: changes accepted again %.2f s, the client's first answer %.2f s (it waits 0.3 s per silent coordinator), relay node %.2f s, view's longest gap %.2f s, %d acknowledged, %d lost",
                round, result.acceptedAgain, result.clientServedAgain, result.relayServedAgain, result.viewGap, result.acknowledged, result.lost))
            results.append(result)
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        let worst = { (values: [Double]) in values.max() ?? 0 }
        print(Measurement.row(
            "leader killed → changes accepted again", median(results.map(\.acceptedAgain)), unit: "s", target: 2,
            note: String(format: "worst %.2f s: the new leader's coordinator serving", worst(results.map(\.acceptedAgain)))))
        let servedAgain = results.map { max($0.clientServedAgain, $0.relayServedAgain) }
        print(Measurement.row(
            "leader killed → every client and relay node served", median(servedAgain), unit: "s", target: 5,
            note: String(format: "worst %.2f s", worst(servedAgain))))
        print(Measurement.row(
            "live views interrupted by the failover", Double(results.filter(\.viewInterrupted).count), unit: "views", target: 0,
            note: String(format: "of %d; longest gap in a view's packets %.2f s (a simulated camera sends one every 0.1 s)", results.count, worst(results.map(\.viewGap)))))
        print(Measurement.row(
            "acknowledged changes lost", Double(results.map(\.lost).reduce(0, +)), unit: "", target: 0,
            note: "of \(results.map(\.acknowledged).reduce(0, +)) acknowledged"))
        print(Measurement.row("audit chains that do not verify (forks)", Double(results.filter { !$0.chainIntact }.count), unit: "", target: 0))
        let roundTrips = results.flatMap(\.changeRoundTrips).sorted()
        if !roundTrips.isEmpty {
            print(Measurement.row(
                "a change's round trip in the cluster, p50", roundTrips[roundTrips.count / 2] * 1000, unit: "ms", target: nil,
                note: "committed by a majority of three before it is answered"))
        }
        print(Measurement.row(
            "relay node killed → its viewer playing elsewhere", median(results.map(\.viewerMoved)), unit: "s", target: 3,
            note: String(format: "worst %.2f s: from the kill to the new view's opening (its first picture follows from the GOP cache)", worst(results.map(\.viewerMoved)))))
        Measurement.say("  references (not measured here): Milestone XProtect's management server failover ≈ 30 s; Genetec's Directory failover keeps video on screen;")
        Measurement.say("  PostgreSQL 15 with synchronous replication under Patroni on etcd: 20 s or more (measured by the issue's author)")
    }

    // MARK: One round

    private func round() throws -> Round {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-bench-failover-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let raftPort = try freeLoopbackPort(), commandPort = try freeLoopbackPort(), eventPort = try freeLoopbackPort(), mediaPort = try freeLoopbackPort()
        let cluster = (1...3).map { "127.0.0.\($0):\(raftPort)" }.joined(separator: ",")
        func data(_ member: Int) -> URL { folder.appendingPathComponent("member\(member)") }
        var members: [Int: Child] = [:]
        defer { for member in members.values { member.kill() } }
        func start(_ member: Int) throws {
            if member != 1 {
                try FileManager.default.createDirectory(at: data(member), withIntermediateDirectories: true)
                try FileManager.default.copyItem(at: data(1).appendingPathComponent("keys"), to: data(member).appendingPathComponent("keys"))
            }
            members[member] = try Child(vigil, [
                "serve", "--data", data(member).path, "--host", "127.0.0.\(member)", "--cluster", cluster, "--member", "\(member)",
                "--command-port", "\(commandPort)", "--event-port", "\(eventPort)", "--media-port", "\(mediaPort)", "--metrics-port", "0",
                "--http-port", "0", "--console-port=-1", "--simulate", "--relay-max-streams", "0",
            ], log: folder.appendingPathComponent("member\(member).log"))
        }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try start(1)
        _ = try members[1]!.waitForLine(containing: #""role":"leader""#)
        try start(2)
        try start(3)
        for member in [2, 3] { _ = try members[member]!.waitForLine(containing: #""role":"standby""#) }
        let leader = 1
        let client = data(2).path

        // A relay node that follows the leader, and a viewer of one of its cameras.
        for (user, agency, role) in [("relay-1", "crisis-centre", "relay"), ("pz.officer", "pz-5339", "operator")] {
            _ = try runVigil(vigil, ["user", "add", user, "--name", "N", "--badge", "B-\(user)", "--role", role, "--agency", agency, "--data", client])
        }
        let endpoints = (1...3).map { "tcp://127.0.0.\($0):\(commandPort)" }
        let node = try Child(vigil, [
            "relay", "--coordinator", endpoints.joined(separator: ","), "--server-key", "\(client)/keys/server.key",
            "--cert", "\(client)/keys/users/relay-1.key_secret", "--media-port", "0", "--http-port", "0", "--simulate",
            "--footage", folder.appendingPathComponent("node-footage").path,
        ], log: folder.appendingPathComponent("node.log"))
        defer { node.kill() }
        _ = try node.waitForLine(containing: #""relay""#)
        let opened = try runVigil(vigil, [
            "incident", "open", "--kind", "public-order", "--at", "50.8467,4.3525", "--radius", "350", "--data", client, "--agency", "pz-5339", "--json",
        ])
        guard let incident = ((try JSONSerialization.jsonObject(with: opened) as? [String: Any])?["incident"] as? [String: Any])?["id"] as? Int else {
            throw BenchSetupFailure("incident open printed no incident")
        }
        let shown = try runVigil(vigil, ["incident", "show", "\(incident)", "--data", client, "--agency", "pz-5339", "--json"])
        guard let camera = ((try JSONSerialization.jsonObject(with: shown) as? [String: Any])?["cameras"] as? [[String: Any]])?
            .first(where: { $0["owner"] as? String == "pz-5339" })?["id"] as? String
        else { throw BenchSetupFailure("the incident selects no camera of pz-5339") }
        let watched = folder.appendingPathComponent("watched.ts")
        let viewSeconds = 16
        let viewer = try Child(vigil, [
            "watch", "--incident", "\(incident)", "--camera", camera, "-o", watched.path, "--seconds", "\(viewSeconds)", "--reason", "public-order",
            "--text", "Following the crowd through a failover", "--data", client, "--agency", "pz-5339", "--user", "pz.officer", "--timeout", "30",
        ], log: folder.appendingPathComponent("viewer.log"))
        defer { viewer.kill() }
        try viewer.waitForLog(containing: "served by relay node", in: folder.appendingPathComponent("viewer.log"))

        // The client: changes to the incident, as fast as they are answered, each at most 0.3 s.
        let changer = try ChangeLoop(data: URL(fileURLWithPath: client), incident: incident, commandPort: commandPort, eventPort: eventPort)
        let changing = Thread { changer.run() }
        changing.start()
        Thread.sleep(forTimeInterval: 3)
        let nodeLinesBefore = node.lines.count
        let killedAt = Date()
        members[leader]!.kill()
        // The new leader serves once it has printed its ready line as leader.
        let deadline = Date().addingTimeInterval(15)
        var servingAt: Date?
        while servingAt == nil {
            guard Date() < deadline else { throw BenchSetupFailure("no coordinator took the lead within 15 s") }
            servingAt = [2, 3].compactMap { member in try? members[member]!.waitForLine(containing: #""role":"leader""#, timeout: 0).at }.min()
            Thread.sleep(forTimeInterval: 0.01)
        }
        Thread.sleep(forTimeInterval: 6)
        changer.stop()
        while !changer.finished { Thread.sleep(forTimeInterval: 0.05) }
        let nodeServed = node.lineTimes.dropFirst(nodeLinesBefore).first.map { $0.timeIntervalSince(killedAt) } ?? .infinity
        _ = viewer.waitForExit(timeout: 30)
        let viewerLog = (try? String(contentsOf: folder.appendingPathComponent("viewer.log"), encoding: .utf8)) ?? ""
        let gap = try longestGap(watched)

        // Every acknowledged change is there: the incident's journal holds the last acknowledged
        // sequence, and no two acknowledgements share one (a change lost by a failover would
        // have its sequence given again to the next).
        let shownAfter = try runVigil(vigil, ["incident", "show", "\(incident)", "--data", client, "--agency", "pz-5339", "--json"])
        let finalSequence = (((try? JSONSerialization.jsonObject(with: shownAfter)) as? [String: Any])?["incident"] as? [String: Any])?["sequence"] as? Int ?? -1
        let sequences = changer.acknowledged.map(\.sequence)
        let repeated = sequences.count - Set(sequences).count
        let lost = repeated + (Int64(finalSequence) < (sequences.max() ?? 0) ? 1 : 0)
        let intact = try [2, 3].allSatisfy { member in
            String(decoding: try runVigil(vigil, ["audit", "verify", "--data", data(member).path, "--json"]), as: UTF8.self).contains(#""intact":true"#)
        }
        // The relay node killed under a second viewer: how long until its view plays again from another relay.
        let movedLog = folder.appendingPathComponent("moved.log")
        let moved = try Child(vigil, [
            "watch", "--incident", "\(incident)", "--camera", camera, "-o", folder.appendingPathComponent("moved.ts").path, "--seconds", "10",
            "--reason", "public-order", "--text", "Following the crowd while its relay node dies", "--data", client, "--agency", "pz-5339",
            "--user", "pz.officer", "--timeout", "30",
        ], log: movedLog)
        defer { moved.kill() }
        try moved.waitForLog(containing: "sealed (content key", in: movedLog)
        Thread.sleep(forTimeInterval: 2)
        let nodeKilledAt = Date()
        node.kill()
        let viewerMoved = (try? moved.waitForLog(containing: "sealed (content key", occurrence: 2, in: movedLog, timeout: 15)).map { $0.timeIntervalSince(nodeKilledAt) } ?? .infinity
        _ = moved.waitForExit(timeout: 30)

        let firstAfter = changer.firstAnswer(sentAfter: killedAt)
        return Round(
            acceptedAgain: servingAt.map { $0.timeIntervalSince(killedAt) } ?? .infinity,
            clientServedAgain: firstAfter.map { $0.timeIntervalSince(killedAt) } ?? .infinity,
            relayServedAgain: nodeServed, viewGap: gap, viewInterrupted: viewerLog.contains("the relay ended the view") || gap > 1,
            acknowledged: changer.acknowledged.count, lost: lost, chainIntact: intact, changeRoundTrips: changer.roundTripsBefore(killedAt),
            viewerMoved: viewerMoved)
    }

    /// The longest time between two consecutive video packets of a recorded view, in seconds.
    private func longestGap(_ file: URL) throws -> Double {
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/ffprobe")
        probe.arguments = ["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time", "-of", "csv=p=0", file.path]
        let output = Pipe()
        probe.standardOutput = output
        probe.standardError = FileHandle.nullDevice
        try probe.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        probe.waitUntilExit()
        // ffprobe's CSV ends each value with a comma here.
        let times = text.split(separator: "\n").compactMap { Double($0.trimmingCharacters(in: CharacterSet(charactersIn: ", \t"))) }.sorted()
        guard times.count > 1 else { return .infinity }
        return zip(times, times.dropFirst()).map { $1 - $0 }.max() ?? .infinity
    }
}

/// A client changing an incident's title in a loop through a cluster's leader (each request
/// waits at most 0.3 s), keeping what was acknowledged and when.
private final class ChangeLoop: @unchecked Sendable {
    struct Acknowledged {
        var incident: Int64
        var sequence: Int64
    }

    private struct Change: Decodable {
        struct Incident: Decodable {
            var id: Int64
            var sequence: Int64
        }

        var incident: Incident
    }

    private struct Update: Encodable {
        var incident: Int
        var title: String
    }

    private let client: LeaderFollowingClient
    private let incident: Int
    private let lock = NSLock()
    private var stopping = false
    private(set) var finished = false
    private var results: [(sent: Date, answered: Date, acknowledged: Acknowledged?)] = []

    init(data: URL, incident: Int, commandPort: Int, eventPort: Int) throws {
        let serverKey = try CurveCertificate.read(data.appendingPathComponent("keys/server.key")).publicKey
        let keys = try CurveCertificate.read(data.appendingPathComponent("keys/agencies/pz-5339.key_secret"))
        let coordinators = (1...3).map { BusProtocol.CoordinatorEndpoints(command: "tcp://127.0.0.\($0):\(commandPort)", events: "tcp://127.0.0.\($0):\(eventPort)") }
        client = LeaderFollowingClient(coordinators: coordinators) { coordinator throws(BusClientError) in
            try BusClient(configuration: BusClientConfiguration(
                commandEndpoint: coordinator.command, eventEndpoint: coordinator.events, serverPublicKey: serverKey, keys: keys))
        }
        self.incident = incident
    }

    func run() {
        var number = 0
        while !lock.withLock({ stopping }) {
            number += 1
            let sent = Date()
            let change = try? client.request(.incidentUpdate, body: Update(incident: incident, title: "change \(number)"), as: Change.self, timeout: .milliseconds(300))
            let answered = Date()
            lock.withLock { results.append((sent, answered, change.map { Acknowledged(incident: $0.incident.id, sequence: $0.incident.sequence) })) }
            if change == nil { Thread.sleep(forTimeInterval: 0.02) }
        }
        client.close()
        lock.withLock { finished = true }
    }

    func stop() {
        lock.withLock { stopping = true }
    }

    var acknowledged: [Acknowledged] { lock.withLock { results.compactMap(\.acknowledged) } }
    /// When the first change sent after `moment` was acknowledged (one in flight then may have been answered by the dead leader).
    func firstAnswer(sentAfter moment: Date) -> Date? {
        lock.withLock { results.first { $0.sent > moment && $0.acknowledged != nil }?.answered }
    }

    func roundTripsBefore(_ moment: Date) -> [Double] {
        lock.withLock { results.filter { $0.answered < moment && $0.acknowledged != nil }.map { $0.answered.timeIntervalSince($0.sent) } }
    }
}
