import Bus
import ClusterLink

extension ClusterLink {
    /// The link of the cluster whose coordinators share `serverKeys` (every member's `DATA/keys`):
    /// its secret is the cluster's secret.
    public convenience init(serverKeys: CurveKeyPair) throws {
        guard let secret = serverKeys.secretKey else { throw ClusterLinkError.weakSecret }
        try self.init(secret: Array(secret.utf8))
    }
}
