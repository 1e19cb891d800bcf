import Incidents

/// The body of `audit.verify`: optionally a checkpoint the auditor kept, to check the log against.
public struct AuditVerifyBody: Sendable, Codable {
    public var checkpoint: AuditCheckpoint?

    public init(checkpoint: AuditCheckpoint? = nil) {
        self.checkpoint = checkpoint
    }
}

/// The result of `audit.verify`: the chain's own check, and the checkpoint's when one was given.
public struct AuditVerifyResult: Sendable, Codable {
    public var entries: Int64
    public var firstBroken: Int64?
    public var problem: String?
    public var intact: Bool
    public var checkpoint: CheckpointVerification?

    public init(_ chain: AuditStore.Verification, checkpoint: CheckpointVerification?) {
        (entries, firstBroken, problem, intact) = (chain.entries, chain.firstBroken, chain.problem, chain.intact)
        self.checkpoint = checkpoint
    }
}
