import Foundation
import Geo

/// A change to an incident's title, details or status; nil members stay as they are.
public struct IncidentUpdate: Sendable, Equatable {
    public var status: IncidentStatus?
    public var title: String?
    public var severity: Severity?
    public var urgency: Urgency?
    public var certainty: Certainty?
    public var participants: [String]?
    public var commander: String?
    /// Merged into the stored references; an empty value removes a reference.
    public var externalReferences: [String: String]?
    public var parent: Int64?

    public init(
        status: IncidentStatus? = nil, title: String? = nil, severity: Severity? = nil, urgency: Urgency? = nil, certainty: Certainty? = nil,
        participants: [String]? = nil, commander: String? = nil, externalReferences: [String: String]? = nil, parent: Int64? = nil
    ) {
        self.status = status
        self.title = title
        self.severity = severity
        self.urgency = urgency
        self.certainty = certainty
        self.participants = participants
        self.commander = commander
        self.externalReferences = externalReferences
        self.parent = parent
    }

    /// Applies the update, returning the names of the members that actually changed.
    func apply(to incident: inout Incident) -> [String] {
        var changed: [String] = []
        func set<T: Equatable>(_ value: T?, _ path: WritableKeyPath<Incident, T>, _ name: String) {
            guard let value, incident[keyPath: path] != value else { return }
            incident[keyPath: path] = value
            changed.append(name)
        }
        set(status, \.status, "status")
        if let title, incident.title != title {
            incident.title = title
            changed.append("title")
        }
        set(severity, \.details.severity, "severity")
        set(urgency, \.details.urgency, "urgency")
        set(certainty, \.details.certainty, "certainty")
        set(participants.map { Array(Set($0)).sorted() }, \.details.participants, "participants")
        if let commander, incident.details.commander != commander {
            incident.details.commander = commander
            changed.append("commander")
        }
        if let references = externalReferences {
            var merged = incident.details.externalReferences
            for (system, value) in references { merged[system] = value.isEmpty ? nil : value }
            set(merged, \.details.externalReferences, "external_references")
        }
        if let parent, incident.details.parent != parent {
            incident.details.parent = parent
            changed.append("parent")
        }
        return changed
    }
}

extension IncidentService {
    /// Changes an incident's title, details or status, journalled as one change.
    ///
    /// Only the lead agency changes an incident. A status change must follow the life cycle
    /// (``IncidentStatus/next``); closing or cancelling releases the selection (change `closed`),
    /// any other update keeps it (change `updated`). The exercise flag never changes.
    ///
    /// - Throws: `not_lead_agency`, `status_transition_invalid`, `incident_not_found`, and the
    ///   detail checks of ``checkDetails(_:lead:incident:in:)``.
    public func update(_ id: Int64, _ update: IncidentUpdate, by agency: String) async throws(IncidentError) -> IncidentChange {
        try Self.checkTitle(update.title)
        let now = Date()
        let change = try await write { db in
            let before = try Self.incident(id, in: db)
            guard before.leadAgency == agency else { throw IncidentError.notLead(before) }
            if let status = update.status, status == before.status, !status.holdsSelection {
                throw IncidentError(.incidentClosed, message: "incident \(id) is already \(status.rawValue)", field: "status")
            }
            if let status = update.status, status != before.status, !before.status.next.contains(status) {
                throw IncidentError(
                    .statusTransitionInvalid,
                    message: "incident \(id) is \(before.status.rawValue); it can become "
                        + (before.status.next.isEmpty ? "nothing else" : before.status.next.map(\.rawValue).joined(separator: " or ")),
                    field: "status")
            }
            var after = before
            let fields = update.apply(to: &after)
            guard !fields.isEmpty else { throw IncidentError(.nothingChanged, message: "the update changes nothing", field: "body") }
            try Self.checkDetails(after.details, lead: after.leadAgency, incident: id, in: db)
            var removed: [String] = []
            let releases = fields.contains("status") && !after.status.holdsSelection && before.status.holdsSelection
            if releases {
                removed = try db.query("SELECT camera_id FROM incident_cameras WHERE incident_id = ? ORDER BY camera_id", [.integer(id)])
                    .map { $0.text(0)! }
                try db.query("DELETE FROM incident_cameras WHERE incident_id = ?", [.integer(id)])
            }
            let closedAt = releases ? Self.timestamp(now) : before.closedAt.map(Self.timestamp)
            try db.query(
                "UPDATE incidents SET status = ?, title = ?, details = ?, parent_id = ?, closed_at = ?, sequence = sequence + 1 WHERE id = ?",
                [.text(after.status.rawValue), after.title.map(SQLValue.text) ?? .null, .text(try Self.encodeDetails(after.details)),
                 after.details.parent.map(SQLValue.integer) ?? .null, closedAt.map(SQLValue.text) ?? .null, .integer(id)])
            let stored = try Self.incident(id, in: db)
            let change = IncidentChange(
                incidentId: id, sequence: stored.sequence, at: now, actor: agency, change: releases ? .closed : .updated, incident: stored,
                added: [], removed: removed, fields: fields)
            try Self.journal(change, in: db)
            return change
        }
        if change.change == .closed {
            trackers.withLock { $0[id] = nil }
            logger.info("incident closed", metadata: ["incident.id": "\(id)", "incident.status": "\(change.incident.status.rawValue)", "agency": "\(agency)"])
        }
        return change
    }

    /// Journals that what the incident's agencies may see changed (a grant was created, revoked
    /// or expired), so that each agency's copy of the channel is brought up to date in sequence.
    public func recordAccessChange(_ id: Int64, by actor: String, reason: String) async throws(IncidentError) -> IncidentChange {
        let now = Date()
        return try await write { db in
            try db.query("UPDATE incidents SET sequence = sequence + 1 WHERE id = ?", [.integer(id)])
            let incident = try Self.incident(id, in: db)
            let change = IncidentChange(
                incidentId: id, sequence: incident.sequence, at: now, actor: actor, change: .accessChanged, incident: incident,
                added: [], removed: [], events: [reason])
            try Self.journal(change, in: db)
            return change
        }
    }

    /// Hands an incident over to another lead agency and/or commander. The agency that hands
    /// over stays on as a participant, so it keeps the channel.
    public func handOver(_ id: Int64, to lead: String?, commander: String?, by agency: String) async throws(IncidentError) -> IncidentChange {
        guard lead != nil || commander != nil else {
            throw IncidentError(.badRequest, message: "hand over to a lead agency, a commander or both", field: "body")
        }
        let now = Date()
        return try await write { db in
            let before = try Self.incident(id, in: db)
            guard before.leadAgency == agency else { throw IncidentError.notLead(before) }
            guard before.status.holdsSelection else {
                throw IncidentError(.incidentClosed, message: "incident \(id) is \(before.status.rawValue)", field: "incident")
            }
            var after = before
            var fields: [String] = []
            if let lead, lead != before.leadAgency {
                after.leadAgency = lead
                after.details.participants = Array(Set(before.details.participants + [before.leadAgency]).subtracting([lead])).sorted()
                // A commander belongs to the lead agency: a new lead without a named commander has none yet.
                after.details.commander = nil
                fields += ["lead_agency", "participants"]
            }
            if let commander { after.details.commander = commander }
            if after.details.commander != before.details.commander { fields.append("commander") }
            guard !fields.isEmpty else { throw IncidentError(.nothingChanged, message: "the hand-over changes nothing", field: "body") }
            try Self.checkDetails(after.details, lead: after.leadAgency, incident: id, in: db)
            try db.query(
                "UPDATE incidents SET lead_agency = ?, details = ?, sequence = sequence + 1 WHERE id = ?",
                [.text(after.leadAgency), .text(try Self.encodeDetails(after.details)), .integer(id)])
            let stored = try Self.incident(id, in: db)
            let change = IncidentChange(
                incidentId: id, sequence: stored.sequence, at: now, actor: agency, change: .handedOver, incident: stored,
                added: [], removed: [], fields: fields)
            try Self.journal(change, in: db)
            return change
        }
    }

    /// The actor of the changes Vigil makes itself (selections recomputed at start-up).
    public static let systemActor = "vigil:system"

    /// Refuses a change of place (redraw, move) unless `agency` leads the incident (or it is Vigil
    /// itself) and the incident still holds a selection.
    static func checkChangeable(_ incident: Incident, by agency: String) throws(IncidentError) {
        guard incident.status.holdsSelection else {
            throw IncidentError(.incidentClosed, message: "incident \(incident.id) is \(incident.status.rawValue)", field: "incident")
        }
        guard incident.leadAgency == agency || agency == systemActor else { throw IncidentError.notLead(incident) }
    }

    /// Recomputes the selection of every incident that holds one (after a restart or a reload, the
    /// registry may have changed): journals and returns a change for each whose cameras differ.
    /// An incident changed meanwhile by a request is left as that change made it.
    public func recomputeSelections() async throws(IncidentError) -> [IncidentChange] {
        var changes: [IncidentChange] = []
        for id in try await liveIncidents().map(\.id) {
            let (incident, march, area) = try await read { db in try Self.stored(id, in: db) }
            do {
                if let march {
                    let head: MarchPosition = march.status.onRoute ? .measure(march.status.headMeters) : .point(incident.center)
                    changes.append(try await move(
                        id, head: head, tail: .measure(march.status.tailMeters), by: Self.systemActor, recomputing: incident.sequence))
                } else {
                    let shape = IncidentArea.stored(area: area, center: incident.center, radiusMeters: incident.radiusMeters)
                    changes.append(try await redraw(id, to: shape, by: Self.systemActor, recomputing: incident.sequence))
                }
            } catch where error.code == "nothing_changed" {
                continue
            }
        }
        return changes
    }

    /// Checks an incident's details against what is stored: participants are agencies, the
    /// commander is a user of the lead agency, the parent exists and is not the incident itself
    /// or one of its descendants.
    static func checkDetails(_ details: IncidentDetails, lead: String, incident: Int64?, in db: SQLiteConnection) throws {
        for agency in details.participants + [lead] where try db.query("SELECT 1 FROM agencies WHERE id = ?", [.text(agency)]).isEmpty {
            throw IncidentError(.agencyUnknown, message: "no agency \(agency)", field: agency == lead ? "lead_agency" : "participants")
        }
        if let commander = details.commander {
            guard try db.query("SELECT agency FROM users WHERE id = ?", [.text(commander)]).first?.text(0) == lead else {
                throw IncidentError(.commanderInvalid, message: "\(commander) is not a user of the lead agency \(lead)", field: "commander")
            }
        }
        for (system, reference) in details.externalReferences where system.isEmpty || system.count > 40 || reference.count > 200 {
            throw IncidentError(.referenceInvalid, message: "a reference has a system name of 1–40 characters and at most 200 characters", field: "external_references")
        }
        if let parent = details.parent {
            // Walk up from the parent: meeting the incident itself would make a cycle.
            var next: Int64? = parent
            while let current = next {
                guard current != incident else {
                    throw IncidentError(.parentInvalid, message: "incident \(parent) is this incident or one of its parts", field: "parent")
                }
                guard let row = try db.query("SELECT parent_id FROM incidents WHERE id = ?", [.integer(current)]).first else {
                    throw IncidentError(.parentInvalid, message: "there is no incident \(current)", field: "parent")
                }
                next = row.integer(0)
            }
        }
    }

    static func encodeDetails(_ details: IncidentDetails) throws -> String {
        String(decoding: try JSONEncoder().encode(details), as: UTF8.self)
    }
}

extension IncidentError {
    static func notLead(_ incident: Incident) -> IncidentError {
        IncidentError(
            .notLeadAgency, message: "incident \(incident.id) is led by \(incident.leadAgency); only it may change the incident",
            field: "incident")
    }
}
