import Incidents
import Synchronization

/// What each agency may watch of each live incident's selection, as the decision function last
/// said: the camera events of a busy incident (a state change, a thumbnail every few seconds per
/// camera) would otherwise read the database once per agency and event.
///
/// An entry holds the whole selection's answer for one incident and agency, so a camera not in
/// it is not visible. Entries are forgotten whenever what they depend on may have changed: the
/// incident's own changes, grants (created, revoked, expired), the registry, users and keys, any
/// incident opening, closing or changing status (an owner's limit counts an agency's open
/// incidents), and every expiry sweep (a grant's window may open with time). A reading started
/// before a forgetting is not stored (the generation moved on), so no entry outlives what it
/// was read from.
final class VisibilityCache: Sendable {
    struct Key: Hashable {
        let incident: Int64
        let agency: String
    }

    private struct Entries {
        var generation = 0
        var visible: [Key: Set<String>] = [:]
    }

    private let entries = Mutex(Entries())

    /// The generation a reading must still be in to be stored.
    var generation: Int {
        entries.withLock { $0.generation }
    }

    /// The cameras `agency` may watch of `incident`'s selection, if known.
    func visible(incident: Int64, agency: String) -> Set<String>? {
        entries.withLock { $0.visible[Key(incident: incident, agency: agency)] }
    }

    /// Stores what the agencies may see of the whole selection of `incident`, read in `generation`.
    func store(_ visible: [String: Set<String>], incident: Int64, readIn generation: Int) {
        entries.withLock { entries in
            guard entries.generation == generation else { return }
            for (agency, cameras) in visible { entries.visible[Key(incident: incident, agency: agency)] = cameras }
        }
    }

    /// Forgets `incident`'s entries (its selection or extent changed).
    func forget(incident: Int64) {
        entries.withLock { entries in
            entries.generation += 1
            entries.visible = entries.visible.filter { $0.key.incident != incident }
        }
    }

    /// Forgets everything.
    func forgetAll() {
        entries.withLock { entries in
            entries.generation += 1
            entries.visible.removeAll()
        }
    }

    /// Forgets what `change` may have made wrong, and returns the generation a reading after it is in.
    @discardableResult
    func forget(after change: IncidentChange) -> Int {
        switch change.change {
        case .redrawn, .moved: forget(incident: change.incidentId)
        case .opened, .closed, .updated, .handedOver, .accessChanged: forgetAll()
        }
        return generation
    }
}
