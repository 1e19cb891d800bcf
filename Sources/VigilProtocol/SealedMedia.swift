import Crypto
import Foundation

// The sealed media plane: a camera's MPEG-TS is encrypted once, with a content key of the
// camera's, and the same bytes go to every viewer of it. The key reaches each viewer over its
// own CURVE connection (the reply to `feed.open`, then `content.key` messages), only while the
// decision function allows the view; it is replaced whenever a viewer joins or leaves, so a
// viewer that left (or was revoked) cannot read what follows, and one that joins cannot read
// what came before it. The threat model is in docs/protocol.md ("Sealed delivery").

/// A camera's content key: 256 bits for ChaCha20-Poly1305, named by a number that grows with
/// each replacement (the frames say which key sealed them).
public struct ContentKey: Codable, Sendable, Equatable {
    public var id: UInt32
    /// 32 bytes (base64 on the wire).
    public var key: Data

    public init(id: UInt32, key: Data) {
        (self.id, self.key) = (id, key)
    }

    /// A fresh random key named `id`.
    public static func random(id: UInt32) -> ContentKey {
        ContentKey(id: id, key: SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) })
    }

    var symmetricKey: SymmetricKey { SymmetricKey(data: key) }
}

/// One sealed frame of a camera's stream, as the relay writes it after the HTTP head of
/// `GET …/sealed`:
///
/// | bytes | field |
/// | --- | --- |
/// | 4 | length of the rest (unsigned, big-endian) |
/// | 4 | key id |
/// | 8 | counter: the frame's number under this key, from 0 |
/// | 1 | flags: bit 0, a player may start here (a keyframe, the PAT and PMT before it) |
/// | n | ciphertext of whole 188-byte MPEG-TS packets |
/// | 16 | Poly1305 tag |
///
/// ChaCha20-Poly1305 (RFC 8439) with the nonce key id ‖ counter (12 bytes) and the 13 bytes
/// key id ‖ counter ‖ flags as associated data: a frame can be neither altered nor moved under
/// another key, position or flag.
public enum SealedFrame {
    /// The bytes before the ciphertext (the length field included).
    public static let headerSize = 17
    public static let tagSize = 16
    /// The largest frame a reader accepts (a 4K keyframe is about 1 MiB).
    public static let maximumLength = 16 * 1024 * 1024
    /// The `Content-Type` of a sealed stream.
    public static let mediaType = "application/vnd.vigil.sealed-ts"

    public struct Opened: Sendable, Equatable {
        public var keyID: UInt32
        public var counter: UInt64
        public var startsAtKeyframe: Bool
        public var transportStream: [UInt8]

        public init(keyID: UInt32, counter: UInt64, startsAtKeyframe: Bool, transportStream: [UInt8]) {
            (self.keyID, self.counter, self.startsAtKeyframe, self.transportStream) = (keyID, counter, startsAtKeyframe, transportStream)
        }
    }

    public enum Failure: Error, Equatable {
        /// No key of that id is known (yet): a `content.key` message may still be on its way.
        case unknownKey(UInt32)
        /// The tag does not verify: altered, or sealed with another key.
        case notAuthentic
        /// A length outside what a frame may be.
        case malformed(String)
    }

    /// Seals `transportStream` (whole MPEG-TS packets) as frame `counter` under `key`.
    public static func seal(_ transportStream: UnsafeRawBufferPointer, key: ContentKey, counter: UInt64, startsAtKeyframe: Bool) -> [UInt8] {
        var header = [UInt8](repeating: 0, count: headerSize)
        store(UInt32(headerSize - 4 + transportStream.count + tagSize), at: 0, in: &header)
        store(key.id, at: 4, in: &header)
        store(counter >> 32, at: 8, in: &header)
        store(counter & 0xFFFF_FFFF, at: 12, in: &header)
        header[16] = startsAtKeyframe ? 1 : 0
        // The nonce and the associated data are parts of the header.
        let nonce = try! ChaChaPoly.Nonce(data: header[4..<16])  // 12 bytes: cannot fail
        let box = try! ChaChaPoly.seal(transportStream, using: key.symmetricKey, nonce: nonce, authenticating: header[4..<17])  // cannot fail with a 256-bit key
        var frame = header
        frame.reserveCapacity(headerSize + transportStream.count + tagSize)
        frame += box.ciphertext
        frame += box.tag
        return frame
    }

    /// Opens one whole frame (its length field included) with the key it names from `keys`.
    public static func open(_ frame: some RandomAccessCollection<UInt8>, keys: [UInt32: ContentKey]) throws(Failure) -> Opened {
        let bytes = Array(frame)
        guard bytes.count >= headerSize + tagSize else { throw .malformed("a frame of \(bytes.count) bytes") }
        guard Int(load(bytes, at: 0)) == bytes.count - 4 else { throw .malformed("a length field that is not the frame's") }
        let keyID = load(bytes, at: 4)
        guard let key = keys[keyID] else { throw .unknownKey(keyID) }
        let counter = UInt64(load(bytes, at: 8)) << 32 | UInt64(load(bytes, at: 12))
        do {
            let box = try ChaChaPoly.SealedBox(
                nonce: ChaChaPoly.Nonce(data: bytes[4..<16]), ciphertext: bytes[headerSize..<(bytes.count - tagSize)], tag: bytes[(bytes.count - tagSize)...])
            let plain = try ChaChaPoly.open(box, using: key.symmetricKey, authenticating: bytes[4..<17])
            return Opened(keyID: keyID, counter: counter, startsAtKeyframe: bytes[16] & 1 != 0, transportStream: Array(plain))
        } catch {
            throw .notAuthentic
        }
    }

    /// Cuts a byte stream into whole frames, as they come. Frames are taken from a read
    /// position; the bytes before it are dropped once, when more come, not once a frame.
    public struct Reader: Sendable {
        private var buffer: [UInt8] = []
        private var start = 0

        public init() {}

        public mutating func append(_ bytes: some Sequence<UInt8>) {
            if start > 0 {
                buffer.removeFirst(start)
                start = 0
            }
            buffer += bytes
        }

        /// The next whole frame, or nil until more bytes come.
        public mutating func next() throws(Failure) -> [UInt8]? {
            guard buffer.count - start >= 4 else { return nil }
            let length = Int(load(buffer, at: start))
            guard length >= headerSize - 4 + tagSize, length <= maximumLength else { throw .malformed("a frame length of \(length) bytes") }
            guard buffer.count - start >= 4 + length else { return nil }
            let frame = Array(buffer[start..<(start + 4 + length)])
            start += 4 + length
            return frame
        }
    }

    private static func store(_ value: some BinaryInteger, at offset: Int, in bytes: inout [UInt8]) {
        let value = UInt32(truncatingIfNeeded: value)
        for index in 0..<4 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (24 - 8 * index)) }
    }

    private static func load(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 << 8 | UInt32(bytes[offset + $1]) }
    }
}
