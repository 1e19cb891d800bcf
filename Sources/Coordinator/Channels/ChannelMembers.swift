import Bus
import VigilProtocol
import Incidents
import Synchronization

/// Which agencies receive each incident's channel (its lead and participants, while it holds a
/// selection), kept in memory so that the bus thread can check a subscription without waiting
/// for the database.
public final class ChannelMembers: Sendable {
    private let members: Mutex<[Int64: Set<String>]>
    private let isAuditor: @Sendable (BusIdentity) -> Bool

    public init(liveIncidents: [Incident], isAuditor: @escaping @Sendable (BusIdentity) -> Bool) {
        members = Mutex(Dictionary(uniqueKeysWithValues: liveIncidents.map { ($0.id, Self.agencies(of: $0)) }))
        self.isAuditor = isAuditor
    }

    /// The agencies an incident's channel is for: its lead and its participants.
    static func agencies(of incident: Incident) -> Set<String> {
        Set(incident.details.participants + [incident.leadAgency])
    }

    /// Records an incident's state after a change: a closed, cancelled or archived incident's
    /// channel accepts no more subscriptions. Returns the agencies that came to take part in it
    /// and those that no longer do (all of them when it ends).
    @discardableResult
    func update(_ incident: Incident) -> (joined: Set<String>, left: Set<String>) {
        members.withLock { members in
            let before = members[incident.id] ?? []
            let after = incident.status.holdsSelection ? Self.agencies(of: incident) : []
            members[incident.id] = after.isEmpty ? nil : after
            return (after.subtracting(before), before.subtracting(after))
        }
    }

    /// How many incidents are live (open or on hold: they hold a selection).
    var liveIncidentCount: Int {
        members.withLock { $0.count }
    }

    /// The agencies taking part in a live incident.
    func agencies(ofIncident id: Int64) -> Set<String> {
        members.withLock { $0[id] } ?? []
    }

    /// The live incidents `agency` takes part in.
    func incidents(withAgency agency: String) -> [Int64] {
        members.withLock { $0.filter { $0.value.contains(agency) }.keys.sorted() }
    }

    /// Whether `identity` may subscribe to `topic`: its own agency's topic of an incident it
    /// takes part in (`incident/ID/AGENCY/`), its own owner channel (`owner/OWNER/`), its own
    /// camera-state, thumbnail and incident-announcement channels (`cameras/AGENCY/`,
    /// `thumbnails/AGENCY/`, `incidents/AGENCY/`), or, for an
    /// auditor, the audit channel (`audit/`). Any other topic, a shorter prefix included, is refused.
    public func allows(_ identity: BusIdentity, topic: String) -> Bool {
        switch EventChannel(topic: topic) {
        case .audit: isAuditor(identity)
        case .incident(let id, let agency): agency == identity.agency && members.withLock { $0[id]?.contains(agency) ?? false }
        case .owner(let agency), .cameras(let agency), .thumbnails(let agency), .incidents(let agency): agency == identity.agency
        case nil: false
        }
    }
}
