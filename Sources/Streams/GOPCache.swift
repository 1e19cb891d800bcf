import Foundation

/// The last group of pictures of a live camera, from its keyframe, bounded in bytes, so that a
/// new subscriber's first picture does not wait for the next keyframe.
///
/// Timing: cached packets keep their original timestamps. A new subscriber receives them at
/// once, as a burst, then live packets; its player decodes the burst as fast as it can (the
/// timestamps are in the past) and shows the newest picture, then plays on in real time.
/// Rewriting timestamps would only hide that the picture is a few seconds old.
///
/// When a GOP outgrows the bound, the cache empties and stays empty until the next keyframe:
/// a late joiner then waits for it, as without a cache, and memory stays bounded.
public struct GOPCache: Sendable {
    public let maximumBytes: Int
    public private(set) var packets: [MediaPacket] = []
    public private(set) var bytes = 0

    public init(maximumBytes: Int) {
        self.maximumBytes = maximumBytes
    }

    public mutating func add(_ packet: MediaPacket) {
        if packet.isKeyframe {
            packets.removeAll(keepingCapacity: true)
            bytes = 0
        } else if packets.isEmpty {
            return  // no keyframe yet (or the GOP overflowed): nothing decodable to keep
        }
        guard bytes + packet.data.count <= maximumBytes else {
            packets.removeAll()
            bytes = 0
            return
        }
        packets.append(packet)
        bytes += packet.data.count
    }

    public mutating func clear() {
        packets.removeAll()
        bytes = 0
    }
}
