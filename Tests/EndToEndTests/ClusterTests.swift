import Foundation
import TestSupport
import Testing

/// Three `vigil serve --cluster` coordinators on one machine, each on its own loopback address
/// (127.0.0.1, .2 and .3: one host each, the same ports), over one dqlite-replicated database.
/// The leader is killed under a loop of acknowledged changes, or frozen (cut off) while the others
/// elect another; what must hold: nothing acknowledged is lost, one audit chain verifies, journals
/// continue their sequences, and a coordinator that lost the lead stops acting.
@Suite("vigil serve --cluster", .serialized, .timeLimit(.minutes(4)))
struct ClusterTests {
    /// A running cluster: each member's data folder and process, by member number.
    final class Cluster {
        let folder: URL
        let raft: [String]
        let ports: [String]
        var folders: [Int: URL] = [:]
        var processes: [Int: RunningProcess] = [:]

        let extra: [String]

        init(extra: [String] = []) throws {
            self.extra = extra
            folder = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-cluster-\(UUID().uuidString)")
            let raftPort = try freeLoopbackPort()
            raft = (1...3).map { "127.0.0.\($0):\(raftPort)" }
            ports = [
                "--command-port", "\(try freeLoopbackPort())", "--event-port", "\(try freeLoopbackPort())", "--media-port", "\(try freeLoopbackPort())",
                "--metrics-port", "0", "--http-port", "0", "--console-port=-1",
            ]
        }

        deinit {
            for process in processes.values { process.kill(SIGKILL) }
            try? FileManager.default.removeItem(at: folder)
        }

        func data(_ member: Int) -> String { folder.appendingPathComponent("member\(member)").path }

        /// Starts member `member` (its folder made from member 1's keys if it has none).
        func start(_ member: Int) async throws {
            let data = URL(fileURLWithPath: data(member))
            if member != 1, !FileManager.default.fileExists(atPath: data.path) {
                try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
                try FileManager.default.copyItem(at: URL(fileURLWithPath: self.data(1)).appendingPathComponent("keys"), to: data.appendingPathComponent("keys"))
            }
            processes[member] = try await RunningProcess(
                vigilBinary,
                ["serve", "--data", data.path, "--host", "127.0.0.\(member)", "--cluster", raft.joined(separator: ","), "--member", "\(member)"] + ports + extra)
        }

        /// Every coordinator's command endpoint, as a relay node is given them.
        var commandEndpoints: String {
            let port = ports[ports.firstIndex(of: "--command-port")! + 1]
            return (1...3).map { "tcp://127.0.0.\($0):\(port)" }.joined(separator: ",")
        }

        /// The member's roles so far, from its ready lines (one per role change).
        func roles(_ member: Int) -> [String] {
            (processes[member]?.lines ?? []).compactMap { line in
                ((try? json(line))?["cluster"] as? [String: Any])?["role"] as? String
            }
        }

        /// Waits until `member`'s last announced role is `role`.
        func waitFor(_ member: Int, toBe role: String, timeout: Duration = patience) async throws {
            let deadline = ContinuousClock.now.advanced(by: timeout)
            while roles(member).last != role {
                guard ContinuousClock.now < deadline, processes[member]?.isRunning == true else {
                    throw ProcessFailure(description: "member \(member) never became \(role) (roles \(roles(member))); stderr: \(processes[member]?.standardError.suffix(2000) ?? "")")
                }
                try await Task.sleep(for: .milliseconds(50))
            }
        }

        /// The member that leads now, waiting for one.
        func leader(among members: [Int] = [1, 2, 3], timeout: Duration = patience) async throws -> Int {
            let deadline = ContinuousClock.now.advanced(by: timeout)
            while ContinuousClock.now < deadline {
                if let leader = members.first(where: { processes[$0]?.isRunning == true && roles($0).last == "leader" }) { return leader }
                try await Task.sleep(for: .milliseconds(50))
            }
            throw ProcessFailure(description: "no leader among members \(members)")
        }

        /// Starts member 1 until it leads alone, then the two others, which join as standbys.
        static func started(extra: [String] = []) async throws -> Cluster {
            let cluster = try Cluster(extra: extra)
            try await cluster.start(1)
            try await cluster.waitFor(1, toBe: "leader")
            try await cluster.start(2)
            try await cluster.start(3)
            try await cluster.waitFor(2, toBe: "standby")
            try await cluster.waitFor(3, toBe: "standby")
            return cluster
        }
    }

    private func incident(_ output: String) throws -> (id: Int, sequence: Int) {
        let incident = try #require(try json(output)["incident"] as? [String: Any])
        return (try #require(incident["id"] as? Int), try #require(incident["sequence"] as? Int))
    }

    @Test func killingTheLeaderLosesNoAcknowledgedChangeAndKeepsOneAuditChain() async throws {
        let cluster = try await Cluster.started()
        var acknowledged: [Int: Int] = [:]  // incident id → its last acknowledged sequence
        var failedDuringFailover = 0
        var follower: RunningProcess?
        defer { follower?.kill(SIGKILL) }
        let killed = try await cluster.leader()
        // Clients use the folder of a member that is not killed: they are sent on to the leader.
        let client = cluster.data(killed == 1 ? 2 : 1)
        for round in 0..<24 {
            if round == 8 { cluster.processes[killed]?.kill(SIGKILL) }
            let opened = try await vigil(
                "incident", "open", "--kind", "fire", "--at", "50.84\(10 + round),4.35\(10 + round)", "--radius", "120", "--data", client, "--json", "--timeout", "10")
            if opened.status == 0 {
                let (id, sequence) = try incident(opened.stdout)
                acknowledged[id] = sequence
                // The first incident is followed on its channel through the failover.
                if follower == nil { follower = try await RunningProcess(vigilBinary, ["follow", "\(id)", "--data", client]) }
            } else {
                // Refused while no coordinator led: never acknowledged, so it may or may not exist.
                failedDuringFailover += 1
                #expect(round >= 8, "before the kill every change is acknowledged: \(opened.stderr)")
            }
        }
        #expect(acknowledged.count >= 20, "the cluster serves again after its leader died (\(failedDuringFailover) refused meanwhile)")
        let successor = try await cluster.leader(among: [1, 2, 3].filter { $0 != killed })

        // Every acknowledged change is there, on the new leader; journals continue their sequences.
        for (id, sequence) in acknowledged.sorted(by: { $0.key < $1.key }) {
            let shown = try await vigil("incident", "show", "\(id)", "--data", client, "--json")
            #expect(shown.status == 0, "incident \(id) was acknowledged: \(shown.stderr)")
            if shown.status == 0 { #expect(try incident(shown.stdout).sequence == sequence) }
        }
        let first = try #require(acknowledged.keys.min())
        let updated = try await vigil("incident", "update", "\(first)", "--title", "after the failover", "--data", client, "--json")
        #expect(updated.status == 0, "\(updated.stderr)")
        if updated.status == 0 { #expect(try incident(updated.stdout).sequence == acknowledged[first]! + 1, "the journal continues where it was") }
        // Its follower found the new leader by itself and received the change.
        let following = try #require(follower)
        let deadline = ContinuousClock.now + .seconds(60)
        while !following.lines.contains(where: { $0.contains("after the failover") }), ContinuousClock.now < deadline, following.isRunning {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(following.lines.contains { $0.contains("after the failover") }, "\(following.lines.suffix(3)) \(following.standardError)")
        #expect(following.standardError.contains("following the cluster's leader"), "\(following.standardError)")

        // The killed member comes back as a standby: one leader, one chain, read on every member.
        try await cluster.start(killed)
        try await cluster.waitFor(killed, toBe: "standby")
        #expect(try await cluster.leader() == successor)
        for member in 1...3 {
            let verified = try await vigil("audit", "verify", "--data", cluster.data(member), "--json")
            #expect(verified.status == 0, "\(verified.stderr)")
            #expect(verified.stdout.contains(#""intact":true"#), "\(verified.stdout)")
        }
    }

    @Test func aLeaderCutOffStopsActingAndTheOthersServeWithoutIt() async throws {
        let cluster = try await Cluster.started()
        let frozen = try await cluster.leader()
        let others = [1, 2, 3].filter { $0 != frozen }
        let opened = try await vigil("incident", "open", "--kind", "traffic", "--at", "50.8466,4.3528", "--radius", "100", "--data", cluster.data(others[0]), "--json")
        let (id, sequence) = try incident(opened.stdout)

        // Frozen, the leader answers nobody (as if its links were cut): the others elect a leader.
        cluster.processes[frozen]?.kill(SIGSTOP)
        let successor = try await cluster.leader(among: others)
        let updated = try await vigil("incident", "update", "\(id)", "--title", "while cut off", "--data", cluster.data(others[1]), "--json", "--timeout", "10")
        #expect(updated.status == 0, "\(updated.stderr)")

        // Back, the old leader finds it no longer leads, stops acting and sends clients on.
        cluster.processes[frozen]?.kill(SIGCONT)
        try await cluster.waitFor(frozen, toBe: "standby")
        #expect(try await cluster.leader() == successor)
        let shown = try await vigil("incident", "show", "\(id)", "--data", cluster.data(frozen), "--json")
        #expect(shown.status == 0, "\(shown.stderr)")
        if shown.status == 0 { #expect(try incident(shown.stdout).sequence == sequence + 1, "one history: the change made while it was cut off") }
        let verified = try await vigil("audit", "verify", "--data", cluster.data(frozen), "--json")
        #expect(verified.stdout.contains(#""intact":true"#), "\(verified.stdout) \(verified.stderr)")
    }

    @Test func aViewOnARelayNodeGoesOnWhileTheLeaderIsKilled() async throws {
        // The coordinators' own relays take no camera: the node serves them all.
        let cluster = try await Cluster.started(extra: ["--simulate", "--relay-max-streams", "0"])
        let killed = try await cluster.leader()
        let client = cluster.data(killed == 1 ? 2 : 1)
        for (user, agency, role) in [("pz.officer", "pz-5339", "operator"), ("relay-1", "crisis-centre", "relay")] {
            let added = try await vigil("user", "add", user, "--name", "N", "--badge", "B-\(user)", "--role", role, "--data", client, "--agency", agency)
            #expect(added.status == 0, "\(added.stderr)")
        }
        let node = try await RunningProcess(vigilBinary, [
            "relay", "--coordinator", cluster.commandEndpoints, "--server-key", "\(client)/keys/server.key", "--cert", "\(client)/keys/users/relay-1.key_secret",
            "--media-port", "0", "--http-port", "0", "--simulate", "--footage", "\(cluster.folder.path)/node-footage",
        ])
        defer { node.kill(SIGKILL) }
        _ = try await node.waitForLines(1)
        let opened = try await vigil(
            "incident", "open", "--kind", "public-order", "--at", "50.8467,4.3525", "--radius", "350", "--data", client, "--agency", "pz-5339", "--json")
        let id = try incident(opened.stdout).id
        let shown = try json(try await vigil("incident", "show", "\(id)", "--data", client, "--agency", "pz-5339", "--json").stdout)
        let camera = try #require((shown["cameras"] as? [[String: Any]])?.first { $0["owner"] as? String == "pz-5339" }?["id"] as? String)

        let output = cluster.folder.appendingPathComponent("watched.ts").path
        let seconds = 24
        let watch = try await RunningProcess(vigilBinary, [
            "watch", "--incident", "\(id)", "--camera", camera, "-o", output, "--seconds", "\(seconds)", "--reason", "public-order",
            "--text", "Following the crowd through a failover", "--data", client, "--agency", "pz-5339", "--user", "pz.officer", "--timeout", "30",
        ])
        try await watch.waitForStandardError(containing: "served by relay node relay-1")
        try await Task.sleep(for: .seconds(2))
        cluster.processes[killed]?.kill(SIGKILL)
        _ = try await cluster.leader(among: [1, 2, 3].filter { $0 != killed })

        // The view played on to its end: the new leader adopted it when the node reported it.
        #expect(try await watch.waitForExit() == 0, "\(watch.standardError)")
        #expect(!watch.standardError.contains("the relay ended the view"), "\(watch.standardError)")
        let frames = try await probe(output).frames
        // A simulated camera sends 10 frames a second; a gap of 2 s at the failover would show.
        #expect(frames >= (seconds - 2) * 10, "\(frames) frames in \(seconds) s at 10 frames a second: no gap at the failover")
        #expect(!node.standardError.contains("holds no such view"), "\(node.standardError.suffix(3000))")
        let verified = try await vigil("audit", "verify", "--data", client, "--json")
        #expect(verified.stdout.contains(#""intact":true"#), "\(verified.stdout) \(verified.stderr)")
    }

    @Test func badClusterOptionsAreRefusedBeforeAnythingStarts() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-cluster-bad-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: data) }
        let base = ["serve", "--data", data.path, "--command-port", "7810", "--event-port", "7811", "--media-port", "7813"]
        for (arguments, message) in [
            (["--cluster", "127.0.0.1:7816,127.0.0.2:7816"], "--cluster needs --member"),
            (["--member", "1"], "--member needs --cluster"),
            (["--cluster", "127.0.0.1:7816,127.0.0.2:7816", "--member", "3"], "--member must be 1 to 2"),
            (["--cluster", "127.0.0.1:7816,127.0.0.1:7816", "--member", "1"], "names an address twice"),
            (["--cluster", "localhost:7816", "--member", "1"], "is not an IP address"),
            (["--cluster", "127.0.0.1", "--member", "1"], "is not HOST:PORT"),
            (["--cluster", "127.0.0.2:7816", "--member", "1"], "is not on --host"),
        ] {
            let refused = try await vigil(base + arguments)
            #expect(refused.status != 0)
            #expect(refused.stderr.contains(message), "\(arguments): \(refused.stderr)")
        }
        // A member other than the first needs member 1's keys: it must present the same server key.
        let keyless = try await vigil(base + ["--host", "127.0.0.2", "--cluster", "127.0.0.1:7816,127.0.0.2:7816", "--member", "2"])
        #expect(keyless.status == 1)
        #expect(keyless.stderr.contains("cluster_keys_missing"), "\(keyless.stderr)")
        #expect(!FileManager.default.fileExists(atPath: data.appendingPathComponent("raft").path), "nothing started")
    }
}
