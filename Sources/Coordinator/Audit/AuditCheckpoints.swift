import Bus
import VigilProtocol
import Crypto
import Foundation
import Incidents
import Logging
import ServiceLifecycle

/// Signs checkpoints of the audit chain (see ``AuditCheckpoint``) every `interval` when the log
/// has grown, and once more when the server stops (``RequestService`` asks, before the bus
/// closes), and publishes each to the auditors (`audit/`) and to every owner (`owner/OWNER/`),
/// latest-wins (`seq` 0): they keep them as evidence.
public struct AuditCheckpoints: Service {
    let audit: AuditStore
    /// The signing key's raw bytes (swift-crypto's key type is not `Sendable`).
    private let keyBytes: Data
    let bus: BusServer
    let owners: [String]
    let interval: Duration
    let logger: Logger

    public init(
        audit: AuditStore, key: Curve25519.Signing.PrivateKey, bus: BusServer, owners: [String], interval: Duration, logger: Logger
    ) {
        (self.audit, keyBytes, self.bus, self.owners, self.interval, self.logger) = (audit, key.rawRepresentation, bus, owners, interval, logger)
    }

    private var key: Curve25519.Signing.PrivateKey {
        // The bytes came from a valid key.
        try! Curve25519.Signing.PrivateKey(rawRepresentation: keyBytes)
    }

    /// The key's public half, base64, as checkpoints carry it.
    public var publicKey: String { key.publicKey.rawRepresentation.base64EncodedString() }

    /// Until graceful shutdown: a checkpoint each interval in which the log grew.
    public func run() async {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            guard !Task.isShuttingDownGracefully else { return }
            await signIfGrown()
        }
    }

    /// Signs, keeps and publishes a checkpoint when entries were added since the last one.
    func signIfGrown() async {
        do {
            let last = try await audit.lastSequence()
            let signed = try await audit.lastCheckpointSequence()
            guard last > signed else { return }
            let checkpoint = try await audit.checkpoint(signedWith: key)
            publish(checkpoint)
            logger.debug("audit checkpoint signed", metadata: ["audit.sequence": "\(checkpoint.sequence)"])
        } catch {
            logger.error("audit checkpoint failed", metadata: ["error": "\(error)"])
        }
    }

    private func publish(_ checkpoint: AuditCheckpoint) {
        bus.publish(on: .audit, seq: 0, type: "audit.checkpoint", body: checkpoint)
        for owner in owners {
            bus.publish(on: .owner(owner), seq: 0, type: "audit.checkpoint", body: checkpoint)
        }
    }
}
