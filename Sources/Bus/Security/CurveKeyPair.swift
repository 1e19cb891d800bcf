internal import CZeroMQ
import Foundation

/// A CURVE key pair in Z85 text (40 characters each).
public struct CurveKeyPair: Sendable, Equatable {
    public let publicKey: String
    /// Nil for a public certificate (a peer's key).
    public let secretKey: String?

    public init(publicKey: String, secretKey: String?) throws(CertificateError) {
        guard Self.isValidKey(publicKey) else { throw .invalidKey("public-key") }
        if let secretKey, !Self.isValidKey(secretKey) { throw .invalidKey("secret-key") }
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// A new random key pair from libzmq (libsodium or tweetnacl inside).
    public static func generate() throws(ZMQError) -> CurveKeyPair {
        var publicKey = [CChar](repeating: 0, count: 41)
        var secretKey = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&publicKey, &secretKey) == 0 else { throw ZMQError.last("zmq_curve_keypair") }
        // Both are valid Z85 keys straight from libzmq.
        return try! CurveKeyPair(publicKey: String(zeroTerminated: publicKey), secretKey: String(zeroTerminated: secretKey))
    }

    /// Whether `key` is 40 characters of Z85 that decode to 32 bytes.
    public static func isValidKey(_ key: String) -> Bool {
        guard key.utf8.count == 40 else { return false }
        var decoded = [UInt8](repeating: 0, count: 32)
        // Returns NULL when the text is not valid Z85.
        return zmq_z85_decode(&decoded, key) != nil
    }

    /// The Z85 text of a raw 32-byte key (as ZAP hands it over).
    static func z85(_ raw: Data) -> String? {
        guard raw.count == 32 else { return nil }
        var text = [CChar](repeating: 0, count: 41)
        let encoded = raw.withUnsafeBytes { zmq_z85_encode(&text, $0.bindMemory(to: UInt8.self).baseAddress, 32) }
        return encoded == nil ? nil : String(zeroTerminated: text)
    }
}
