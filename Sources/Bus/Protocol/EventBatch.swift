import Foundation

/// Batched subscriptions: a subscriber that prefixes a topic with ``prefix`` (`batch:incident/12/`)
/// receives that topic's events as they were queued together, several to a message: the second
/// frame is a JSON array of the events (the same envelopes as one at a time), in order. CURVE
/// encrypts each frame on its own, so a batch of 64 events costs the subscriber and the server
/// one encryption instead of 64 (how NATS amortises TLS over its records). A subscriber without
/// the prefix gets one event per message, as before.
public enum EventBatch {
    public static let prefix = "batch:"
    /// The most events and bytes in one batch.
    public static let maximumEvents = 64
    public static let maximumBytes = 256 * 1024

    /// The channel topic of a subscription, batched or not.
    public static func channelTopic(of topic: String) -> String {
        topic.hasPrefix(prefix) ? String(topic.dropFirst(prefix.count)) : topic
    }

    /// `events` (each one JSON object) as one JSON array, in order.
    public static func join(_ events: some Collection<Data>) -> Data {
        var batch = Data(capacity: events.reduce(2) { $0 + $1.count + 1 })
        batch.append(UInt8(ascii: "["))
        for (index, event) in events.enumerated() {
            if index > 0 { batch.append(UInt8(ascii: ",")) }
            batch.append(event)
        }
        batch.append(UInt8(ascii: "]"))
        return batch
    }

    /// The top-level elements of a JSON array, each as its own bytes, without decoding them;
    /// nil when `batch` is not an array of objects that ends where it should. One pass over
    /// the bytes, tracking only strings and depth: a subscriber splits as fast as it receives.
    public static func split(_ batch: Data) -> [Data]? {
        batch.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> [Data]? in
            let bytes = raw.bindMemory(to: UInt8.self)
            let count = bytes.count
            var index = 0
            @inline(__always) func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 }
            while index < count, isSpace(bytes[index]) { index += 1 }
            guard index < count, bytes[index] == 0x5B else { return nil }  // [
            index += 1
            var events: [Data] = []
            while true {
                while index < count, isSpace(bytes[index]) { index += 1 }
                guard index < count else { return nil }
                if bytes[index] == 0x5D, events.isEmpty {  // ] of an empty array
                    index += 1
                    break
                }
                guard bytes[index] == 0x7B else { return nil }  // {
                // One object: it ends where the depth returns to zero outside a string.
                let start = index
                var depth = 0
                repeat {
                    switch bytes[index] {
                    case 0x22:  // a string: to its closing quote, past escaped characters
                        index += 1
                        while index < count, bytes[index] != 0x22 { index += bytes[index] == 0x5C ? 2 : 1 }
                        guard index < count else { return nil }
                    case 0x7B, 0x5B: depth += 1
                    case 0x7D, 0x5D: depth -= 1
                    default: break
                    }
                    index += 1
                } while depth > 0 && index < count
                guard depth == 0 else { return nil }
                events.append(Data(UnsafeRawBufferPointer(rebasing: raw[start..<index])))
                while index < count, isSpace(bytes[index]) { index += 1 }
                guard index < count else { return nil }
                if bytes[index] == 0x2C {  // ,
                    index += 1
                    continue
                }
                guard bytes[index] == 0x5D else { return nil }  // ]
                index += 1
                break
            }
            while index < count, isSpace(bytes[index]) { index += 1 }
            return index == count ? events : nil
        }
    }
}
