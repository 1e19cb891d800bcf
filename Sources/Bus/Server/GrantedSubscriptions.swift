import Foundation

/// The subscriptions an event endpoint has granted, plain and batched, as prefixes: which forms
/// of a topic's events anyone may want. Only ever added to (an unsubscription cannot be told
/// from a refused subscriber's), so it errs toward sending a form nobody reads, never toward
/// withholding one. The server sends a topic's events one by one only when a plain prefix
/// matches it, and in batches only when a batched one does.
struct GrantedSubscriptions {
    private var plain: Set<String> = []
    private var batched: Set<String> = []
    private var audiences: [String: (plain: Bool, batched: Bool)] = [:]

    mutating func grant(_ subscribed: String) {
        let inserted = subscribed.hasPrefix(EventBatch.prefix)
            ? batched.insert(String(subscribed.dropFirst(EventBatch.prefix.count))).inserted
            : plain.insert(subscribed).inserted
        if inserted { audiences.removeAll() }
    }

    /// Which forms of `topic`'s events someone subscribed to.
    mutating func audience(of topic: String) -> (plain: Bool, batched: Bool) {
        if let known = audiences[topic] { return known }
        // Topics come and go with incidents: the answers are kept for the recent ones only.
        if audiences.count >= 10_000 { audiences.removeAll() }
        let audience = (plain: plain.contains { topic.hasPrefix($0) }, batched: batched.contains { topic.hasPrefix($0) })
        audiences[topic] = audience
        return audience
    }
}
