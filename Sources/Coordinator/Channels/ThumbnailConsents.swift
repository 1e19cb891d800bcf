import Synchronization

/// Which agencies have asked, with a recorded justification, for the thumbnails of an incident's
/// cameras (`thumbnails.start`). Kept in memory: after a restart an agency asks again, which is
/// recorded again. A closed incident's entries no longer matter: thumbnails go only to the
/// agencies of live incidents (``ChannelMembers``).
public final class ThumbnailConsents: Sendable {
    private struct Key: Hashable {
        var incident: Int64
        var agency: String
    }

    private let consents = Mutex<Set<Key>>([])

    func start(incident: Int64, agency: String) {
        _ = consents.withLock { $0.insert(Key(incident: incident, agency: agency)) }
    }

    /// Whether `agency` had asked; ends its consent.
    func stop(incident: Int64, agency: String) -> Bool {
        consents.withLock { $0.remove(Key(incident: incident, agency: agency)) != nil }
    }

    /// Whether `agency` asked for the thumbnails of any of `incidents`.
    func covers(_ agency: String, anyOf incidents: Set<Int64>) -> Bool {
        consents.withLock { consents in incidents.contains { consents.contains(Key(incident: $0, agency: agency)) } }
    }
}
