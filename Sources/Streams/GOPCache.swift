import Foundation

/// The last groups of pictures of a live camera, each from its keyframe, bounded in bytes: the
/// newest GOP lets a new subscriber's first picture come at once instead of at the next
/// keyframe; the few before it are a recording's pre-roll (``preroll``), the seconds before an
/// incident selected the camera.
///
/// Timing: cached packets keep their original timestamps. A new subscriber receives them at
/// once, as a burst, then live packets; its player decodes the burst as fast as it can (the
/// timestamps are in the past) and shows the newest picture, then plays on in real time.
/// Rewriting timestamps would only hide that the picture is a few seconds old.
///
/// When the newest GOP alone outgrows the bound, the cache empties and stays empty until the
/// next keyframe: a late joiner then waits for it, as without a cache, and memory stays
/// bounded. When the older GOPs do, the oldest go first.
public struct GOPCache: Sendable {
    public let maximumBytes: Int
    /// How far back the pre-roll reaches: the GOPs that started within this time before the
    /// newest packet, plus the one in progress at its start (by ``MediaPacket/receivedAt``;
    /// packets without it keep the newest GOP only).
    public let prerollDuration: TimeInterval
    private var groups: [[MediaPacket]] = []
    private var groupBytes: [Int] = []
    public private(set) var bytes = 0

    public init(maximumBytes: Int, prerollDuration: TimeInterval = 0) {
        self.maximumBytes = maximumBytes
        self.prerollDuration = prerollDuration
    }

    /// The newest GOP, from its keyframe: what a late joiner starts with.
    public var packets: [MediaPacket] { groups.last ?? [] }

    /// Every GOP kept, oldest first, from a keyframe: what a recording starts with.
    public var preroll: [MediaPacket] { groups.flatMap { $0 } }

    public mutating func add(_ packet: MediaPacket) {
        if packet.isKeyframe {
            forgetBeforePreroll(now: packet.receivedAt)
            groups.append([])
            groupBytes.append(0)
        } else if groups.isEmpty {
            return  // no keyframe yet (or the GOP overflowed): nothing decodable to keep
        }
        guard groupBytes[groupBytes.count - 1] + packet.data.count <= maximumBytes else {
            clear()
            return
        }
        groups[groups.count - 1].append(packet)
        groupBytes[groupBytes.count - 1] += packet.data.count
        bytes += packet.data.count
        while bytes > maximumBytes, groups.count > 1 { dropOldest() }
    }

    public mutating func clear() {
        groups.removeAll()
        groupBytes.removeAll()
        bytes = 0
    }

    /// Before a new GOP starts at `now`: drops the GOPs that ended before the pre-roll's start
    /// (`now` minus its duration), all of them without a pre-roll.
    private mutating func forgetBeforePreroll(now: Date?) {
        guard let now, prerollDuration > 0 else {
            clear()
            return
        }
        let start = now.addingTimeInterval(-prerollDuration)
        while !groups.isEmpty {
            let end = groups.count > 1 ? groups[1].first?.receivedAt : now
            guard let end, end <= start else { break }
            dropOldest()
        }
    }

    private mutating func dropOldest() {
        groups.removeFirst()
        bytes -= groupBytes.removeFirst()
    }
}
