import Incidents
import Synchronization

/// What each owner has been told that its incident-bound grants make available, per incident
/// and agency, so that the owner's channel hears of it when that set changes and only then; and
/// which refusals for exceeded limits were audited already (once per incident, agency, owner
/// and code). In memory: after a restart the first change of an incident starts afresh.
public final class IncidentGrantLedger: Sendable {
    struct Key: Hashable {
        let incident: Int64
        let agency: String
    }

    private struct Available {
        var owner: String
        var cameras: Set<String>
    }

    private struct State {
        var available: [Key: [String: Available]] = [:]
        var refusalsAudited: Set<String> = []
    }

    private let state = Mutex(State())

    func knows(_ key: Key) -> Bool {
        state.withLock { $0.available[key] != nil }
    }

    /// Records the whole of what is available now for `key` (after a change that resets what
    /// agencies see); returns a notice for each grant whose set changed.
    func replace(_ key: Key, with uses: [String: IncidentGrantUse]) -> [IncidentCamerasAvailable] {
        apply(key) { _ in uses.mapValues { Available(owner: $0.owner, cameras: Set($0.cameras)) } }
    }

    /// Adds the cameras a change made available and takes out those it removed.
    func update(_ key: Key, adding uses: [String: IncidentGrantUse], removing removed: [String]) -> [IncidentCamerasAvailable] {
        apply(key) { current in
            var next = current
            for grant in next.keys { next[grant]!.cameras.subtract(removed) }
            for (grant, use) in uses { next[grant, default: Available(owner: use.owner, cameras: [])].cameras.formUnion(use.cameras) }
            return next
        }
    }

    /// Whether this refusal is the first of its kind for the incident, agency and owner.
    func firstRefusal(_ key: Key, owner: String, code: String) -> Bool {
        state.withLock { $0.refusalsAudited.insert("\(key.incident)/\(key.agency)/\(owner)/\(code)").inserted }
    }

    /// Forgets a closed incident.
    func forget(incident: Int64) {
        state.withLock { state in
            state.available = state.available.filter { $0.key.incident != incident }
            state.refusalsAudited = state.refusalsAudited.filter { !$0.hasPrefix("\(incident)/") }
        }
    }

    private func apply(_ key: Key, _ change: ([String: Available]) -> [String: Available]) -> [IncidentCamerasAvailable] {
        state.withLock { state in
            let before = state.available[key] ?? [:]
            let after = change(before).filter { !$0.value.cameras.isEmpty }
            state.available[key] = after
            return Set(before.keys).union(after.keys).sorted().compactMap { grant in
                let old = before[grant]?.cameras ?? [], new = after[grant]?.cameras ?? []
                guard old != new, let owner = after[grant]?.owner ?? before[grant]?.owner else { return nil }
                return IncidentCamerasAvailable(
                    owner: owner, incident: key.incident, agency: key.agency, grant: grant, cameras: new.sorted(),
                    added: new.subtracting(old).sorted(), removed: old.subtracting(new).sorted())
            }
        }
    }
}
