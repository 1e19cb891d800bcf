import Crypto
import Foundation
import NIOSSL
import X509

/// What a coordinator shows the other members of its cluster, and what it asks of them: a
/// P-256 key derived from the cluster's secret (the CURVE server secret key that every member
/// holds in `DATA/keys`), in a self-signed certificate.
///
/// Every member derives the same key, so a member needs nothing beyond the keys it already has,
/// and a peer is one of the cluster exactly when its certificate carries that public key: no
/// certificate authority, no names, no dates to check (the certificate only carries the key).
struct ClusterIdentity: Sendable {
    let certificate: NIOSSLCertificate
    let privateKey: NIOSSLPrivateKey
    /// The public key every member's certificate carries (SubjectPublicKeyInfo, DER).
    let publicKeyInfo: [UInt8]

    /// - Parameter secret: the cluster's secret (every member's same bytes); at least 32 bytes.
    init(secret: [UInt8]) throws {
        guard secret.count >= 32 else { throw ClusterLinkError.weakSecret }
        let key = try Self.signingKey(from: secret)
        let name = try DistinguishedName { CommonName("vigil cluster member") }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(bytes: [1]), publicKey: .init(key.publicKey),
            notValidBefore: Date(timeIntervalSince1970: 1_704_067_200),  // 2024-01-01
            notValidAfter: Date(timeIntervalSince1970: 4_102_444_800),  // 2100-01-01
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions { Critical(BasicConstraints.notCertificateAuthority) },
            issuerPrivateKey: .init(key))
        self.certificate = try NIOSSLCertificate(bytes: Array(try certificate.serializeAsPEM().pemString.utf8), format: .pem)
        privateKey = try NIOSSLPrivateKey(bytes: Array(key.pemRepresentation.utf8), format: .pem)
        publicKeyInfo = try self.certificate.extractPublicKey().toSPKIBytes()
    }

    /// HKDF-SHA256 of the secret, read as a P-256 scalar; the rare output that is not a valid
    /// scalar (about 1 in 2³²) is derived again with the next counter.
    private static func signingKey(from secret: [UInt8]) throws -> P256.Signing.PrivateKey {
        for counter in UInt8(0)...UInt8(15) {
            let derived = HKDF<SHA256>.deriveKey(
                inputKeyMaterial: SymmetricKey(data: secret), salt: Array("vigil cluster link".utf8),
                info: Array("raft tls p-256 v1".utf8) + [counter], outputByteCount: 32)
            if let key = try? derived.withUnsafeBytes({ try P256.Signing.PrivateKey(rawRepresentation: $0) }) { return key }
        }
        throw ClusterLinkError.weakSecret
    }

    /// Whether a peer's certificate chain shows a member of this cluster.
    func isMember(_ chain: [NIOSSLCertificate]) -> Bool {
        guard let leaf = chain.first, let presented = try? leaf.extractPublicKey().toSPKIBytes() else { return false }
        return presented == publicKeyInfo
    }

    /// TLS 1.3 only, this identity shown, the peer's certificate required (on both sides).
    func tlsConfiguration(server: Bool) -> TLSConfiguration {
        var configuration = server
            ? TLSConfiguration.makeServerConfiguration(certificateChain: [.certificate(certificate)], privateKey: .privateKey(privateKey))
            : TLSConfiguration.makeClientConfiguration()
        configuration.certificateChain = [.certificate(certificate)]
        configuration.privateKey = .privateKey(privateKey)
        configuration.minimumTLSVersion = .tlsv13
        // Checked by ``isMember(_:)`` instead of a chain to a trust root (see the type's comment).
        configuration.certificateVerification = .noHostnameVerification
        return configuration
    }
}

/// Why the cluster's link refused or failed; each has a stable code.
public enum ClusterLinkError: Error, CustomStringConvertible, Sendable {
    /// The cluster secret is shorter than 32 bytes.
    case weakSecret
    /// A Raft address is not `IPV4:PORT` or `[IPV6]:PORT`.
    case badAddress(String)
    /// The peer did not complete the handshake, or is not a member of this cluster (its key differs).
    case handshakeFailed(String, reason: String)
    /// Nothing answered at the address in time.
    case unreachable(String, reason: String)

    public var code: String {
        switch self {
        case .weakSecret: "cluster_secret_weak"
        case .badAddress: "cluster_address_invalid"
        case .handshakeFailed: "cluster_peer_refused"
        case .unreachable: "cluster_peer_unreachable"
        }
    }

    public var description: String {
        switch self {
        case .weakSecret: "\(code): the cluster's secret must be at least 32 bytes"
        case .badAddress(let address): "\(code): \(address) is not IPV4:PORT or [IPV6]:PORT"
        case .handshakeFailed(let address, let reason): "\(code): \(address) is not a member of this cluster, or refused this one (\(reason))"
        case .unreachable(let address, let reason): "\(code): \(address): \(reason)"
        }
    }
}
