import Bus
import ClusterLink
import Foundation
import Incidents
import Logging
import ServiceLifecycle
import Synchronization
import VigilProtocol

/// One coordinator of a replicated cluster (`vigil serve --cluster`): a member of the dqlite
/// cluster that replicates the Vigil database, and the active coordinator exactly while its
/// member leads that cluster.
///
/// - A member that does not lead is a **standby**: its bus answers every request `not_leader`,
///   with the leader's endpoints (``StandbyResponder``). It keeps no state of its own.
/// - When its member becomes the leader, it starts the whole coordinator over the replicated
///   database (``run()``'s `active` term), as a restarted server would from its file.
/// - **Fencing.** The active term runs beside a ``LeadershipWatch`` that asks the member
///   whether it still leads every ``Configuration/leadershipCheck``; the first "no" cancels the
///   term at once, and the member is a standby again. Meanwhile dqlite itself refuses every
///   write of a member that lost the lead: a minority never commits, and nothing reaches the
///   audit chain that a majority does not hold.
///
/// Every coordinator binds the same ports on its own host: the leader's endpoints are its
/// member's host with those ports.
public final class ClusterMember: Service {
    public struct Configuration: Sendable {
        /// Every member's Raft address, in member order (member 1 first), the same list on every coordinator.
        public var members: [ReplicatedNode.Member]
        /// This coordinator's member.
        public var me: ReplicatedNode.Member
        /// Where this member keeps its Raft log.
        public var folder: URL
        /// The wire to the other members (``ClusterLink``: mutual TLS with the cluster's key).
        public var transport: any ReplicationTransport
        /// This coordinator's bus (its command and event endpoints are those of the active term too).
        public var bus: BusServerConfiguration
        /// The ports every coordinator binds its command, event and media endpoints at.
        public var commandPort: Int
        public var eventPort: Int
        public var mediaPort: Int
        /// How often the active coordinator asks whether its member still leads. The fence's bound
        /// is this, plus the time dqlite's leader takes to step down when cut from the majority
        /// (its election timeout: 0.3 s by default).
        public var leadershipCheck: Duration = .milliseconds(200)

        public init(
            members: [ReplicatedNode.Member], me: ReplicatedNode.Member, folder: URL, transport: any ReplicationTransport, bus: BusServerConfiguration,
            commandPort: Int, eventPort: Int, mediaPort: Int
        ) {
            self.members = members
            self.me = me
            self.folder = folder
            self.transport = transport
            self.bus = bus
            self.commandPort = commandPort
            self.eventPort = eventPort
            self.mediaPort = mediaPort
        }

        /// A member's endpoints: its Raft address's host, the coordinators' ports.
        public func endpoints(of member: ReplicatedNode.Member) -> BusProtocol.CoordinatorEndpoints {
            let host = member.address.lastIndex(of: ":").map { String(member.address[..<$0]) } ?? member.address
            return .init(command: "tcp://\(host):\(commandPort)", events: "tcp://\(host):\(eventPort)", media: "tcp://\(host):\(mediaPort)")
        }
    }

    public enum Role: String, Sendable {
        case standby
        case leader
    }

    /// The active coordinator's term: it runs its services with `watch` among them (which
    /// throws ``LeadershipLost`` when the member stops leading) and returns when they end.
    public typealias ActiveTerm = @Sendable (_ database: Database, _ watch: LeadershipWatch) async throws -> Void

    public let configuration: Configuration
    public let node: ReplicatedNode
    private let logger: Logger
    private let active: ActiveTerm
    private let roleChanged: @Sendable (Role) -> Void
    /// Whether this member is a voter of the cluster (member 1 starts it; the others join it).
    private let joined: Atomic<Bool>
    /// Where the leader is, as this member last heard: what the standby's answers carry.
    private let leaderHint = Mutex<BusProtocol.CoordinatorEndpoints?>(nil)

    public init(
        configuration: Configuration, logger: Logger, roleChanged: @escaping @Sendable (Role) -> Void, active: @escaping ActiveTerm
    ) throws {
        self.configuration = configuration
        self.logger = logger
        self.roleChanged = roleChanged
        self.active = active
        joined = Atomic(configuration.me.id == 1)
        node = try ReplicatedNode(member: configuration.me, folder: configuration.folder, transport: configuration.transport)
    }

    public func run() async throws {
        try node.start()
        defer { node.stop() }
        logger.info("cluster member started", metadata: ["member": "\(configuration.me)", "members": "\(configuration.members)"])
        try await withThrowingDiscardingTaskGroup { group in
            // Members other than the first join the cluster through whichever peer answers.
            if configuration.me.id != 1 { group.addTask { await self.joinCluster() } }
            group.addTask { await self.followLeader() }
            defer { group.cancelAll() }
            try await alternateRoles()
        }
    }

    /// Standby until the member leads, then the active term until it stops leading; again,
    /// until the server stops.
    private func alternateRoles() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let standby = try StandbyResponder(configuration: configuration.bus, logger: logger) { self.leaderHint.withLock { $0 } }
            let answering = Task { try await standby.run() }
            // Announced once the member is a voter: from then on the cluster can fail over to it.
            let announcing = Task {
                while !self.joined.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(100)) }
                self.roleChanged(.standby)
            }
            let leads = (try? await cancelWhenGracefulShutdown { try await self.waitUntilLeading() }) ?? false
            announcing.cancel()
            answering.cancel()
            if case .failure(let error) = await answering.result { throw error }
            guard leads else { return }

            logger.notice("this coordinator leads the cluster: starting", metadata: ["member": "\(configuration.me)"])
            roleChanged(.leader)
            let watch = LeadershipWatch(node: node, interval: configuration.leadershipCheck)
            do {
                let database = try Database(replicatedAt: configuration.me.address, through: configuration.transport)
                try await active(database, watch)
            } catch where watch.lost || Database.isLostLeadership(error) {
                logger.warning("this coordinator lost the lead: it stopped acting, and is a standby again", metadata: ["error": "\(error)"])
                continue
            }
            if !watch.lost { return }  // stopped (SIGTERM)
        }
    }

    private func waitUntilLeading() async throws -> Bool {
        while true {
            if node.isLeader() { return true }
            try await Task.sleep(for: configuration.leadershipCheck)
        }
    }

    /// Keeps the leader's endpoints for the standby's answers.
    private func followLeader() async {
        while !Task.isCancelled {
            let leader = node.leader().flatMap { leader in configuration.members.first { $0.id == leader.id } }
            leaderHint.withLock { $0 = leader.map(configuration.endpoints(of:)) }
            try? await Task.sleep(for: .milliseconds(500))
        }
    }

    private func joinCluster() async {
        let peers = configuration.members.filter { $0 != configuration.me }.map(\.address)
        var attempts = 0
        while !Task.isCancelled {
            do {
                try node.join(through: peers)
                joined.store(true, ordering: .releasing)
                logger.info("joined the cluster as a voter", metadata: ["member": "\(configuration.me)"])
                return
            } catch {
                attempts += 1
                if attempts % 10 == 1 { logger.notice("cannot join the cluster yet; trying again", metadata: ["error": "\(error)"]) }
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }
}

/// Thrown by ``LeadershipWatch`` when the member no longer leads its cluster.
public struct LeadershipLost: Error, CustomStringConvertible {
    public var description: String { "this coordinator's member no longer leads the cluster" }
}

/// The fence of an active coordinator: asks its member every `interval` whether it still leads,
/// and throws ``LeadershipLost`` at the first "no" (a group that runs it with
/// `failureTerminationBehavior: .cancelGroup` stops acting at once).
public final class LeadershipWatch: Service, Sendable {
    private let node: ReplicatedNode
    private let interval: Duration
    private let lostFlag = Atomic<Bool>(false)

    init(node: ReplicatedNode, interval: Duration) {
        self.node = node
        self.interval = interval
    }

    /// Whether the watch saw the lead lost.
    public var lost: Bool { lostFlag.load(ordering: .acquiring) }

    public func run() async throws {
        while !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
            } catch {
                return
            }
            if !node.isLeader() {
                lostFlag.store(true, ordering: .releasing)
                throw LeadershipLost()
            }
        }
    }
}
