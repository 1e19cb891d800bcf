import Foundation

/// Why a camera is consulted or footage disclosed (brief requirement 6).
public enum ReasonCode: String, Sendable, Codable, CaseIterable {
    case emergencyResponse = "emergency-response"
    case rescue
    case publicOrder = "public-order"
    case trafficManagement = "traffic-management"
    case criminalInvestigation = "criminal-investigation"
    case evidencePreservation = "evidence-preservation"
    /// The only reason for an exercise incident, and never for a real one.
    case training
}

/// The justification every consultation and disclosure carries: a reason, a text, the incident.
public struct Justification: Sendable, Codable, Equatable {
    /// How many visible characters the text has (see ``visibleLength(of:)``).
    public static let textLength = 5...1000

    /// The characters of `text` that show: not white space, not control or format characters
    /// (NUL, zero-width spaces, direction marks), so that invisible text cannot pass the rule.
    public static func visibleLength(of text: String) -> Int {
        text.filter { character in
            character.unicodeScalars.contains { scalar in
                !scalar.properties.isWhitespace && ![.control, .format, .unassigned, .surrogate, .privateUse].contains(scalar.properties.generalCategory)
            }
        }.count
    }

    public var reason: ReasonCode
    public var text: String
    public var incident: Int64

    public init(reason: ReasonCode, text: String, incident: Int64) {
        self.reason = reason
        self.text = text
        self.incident = incident
    }
}

/// A consultation asked for: a live view, a playback, an export or PTZ control of one camera,
/// by a named user, with its justification; `recipient` names who receives a disclosure.
public struct Consultation: Sendable {
    public var request: AccessRequest
    public var justification: Justification?
    public var recipient: String?
    /// Where the request came from, for the audit log.
    public var source: String?

    public init(request: AccessRequest, justification: Justification?, recipient: String? = nil, source: String? = nil) {
        self.request = request
        self.justification = justification
        self.recipient = recipient
        self.source = source
    }
}

/// An allowed consultation: the view to stop when done, and the grant that allowed it.
public struct ViewTicket: Sendable, Codable, Equatable {
    public var view: String
    public var camera: String
    public var mode: AccessMode
    public var incident: Int64
    public var grant: String
    public var startedAt: Date
}

extension AccessService {
    /// Starts a consultation: checks the justification, decides, and audits the decision (allowed
    /// or refused) with who, when, what, why, to whom and from where, in one transaction with the
    /// view it records.
    ///
    /// Every refusal is audited (`view.refused` or `export.refused`, with its code), those for a
    /// missing user or justification too.
    ///
    /// - Throws: ``IncidentError`` `named_user_required`, `justification_required`,
    ///   `justification_invalid`, or the decision's refusal code.
    public func start(_ consultation: Consultation) async throws -> ViewTicket {
        var request = consultation.request
        let noun = request.mode == .export ? "export" : "view"
        /// Records the refusal, then throws it.
        func refuse(_ error: IncidentError) async throws -> Never {
            try await database.run { [request] db in
                try db.transaction {
                    try AuditLog.append(AuditRecord(
                        action: "\(noun).refused", at: request.at, agency: request.agency, user: request.user, cameras: [request.camera],
                        reason: consultation.justification?.reason.rawValue, justification: consultation.justification?.text,
                        recipient: consultation.recipient, incident: consultation.justification?.incident, source: consultation.source,
                        details: ["code": error.code, "mode": request.mode.rawValue]), in: db)
                }
            }
            throw error
        }
        let (user, justification, text): (String, Justification, String)
        do {
            (user, justification, text) = try await justified(user: request.user, consultation.justification)
        } catch {
            try await refuse(error)
        }
        request.incident = justification.incident
        let now = request.at
        return try await database.run { [self, request] db in
            let decision = try decide(request, in: db)
            let badge = try db.query("SELECT badge FROM users WHERE id = ?", [.text(user)]).first?.text(0)
            func record(_ action: String, grant: String?, details: [String: String]) -> AuditRecord {
                AuditRecord(
                    action: action, at: now, agency: request.agency, user: user, badge: badge, cameras: [request.camera],
                    footageFrom: request.footageTime.map(AuditLog.timestamp), reason: justification.reason.rawValue, justification: text,
                    recipient: consultation.recipient, incident: justification.incident, grant: grant, source: consultation.source,
                    details: details.merging(["mode": request.mode.rawValue]) { a, _ in a })
            }
            switch decision {
            case .deny(let code, let message):
                // The refusal is kept even though the request fails.
                try db.transaction { try AuditLog.append(record("\(noun).refused", grant: nil, details: ["code": code]), in: db) }
                throw IncidentError(passing: code, message: message, field: "camera")
            case .allow(let grant):
                let ticket = ViewTicket(
                    view: UUID().uuidString.lowercased(), camera: request.camera, mode: request.mode, incident: justification.incident,
                    grant: grant, startedAt: now)
                try db.transaction {
                    try db.query(
                        """
                        INSERT INTO views (id, agency, user, camera_id, mode, incident_id, grant_id, reason, justification, started_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                        [.text(ticket.view), .text(request.agency), .text(user), .text(request.camera), .text(request.mode.rawValue),
                         .integer(justification.incident), .text(grant), .text(justification.reason.rawValue), .text(text),
                         .text(IncidentService.timestamp(now))])
                    try AuditLog.append(record("\(noun).started", grant: grant, details: ["view": ticket.view]), in: db)
                }
                return ticket
            }
        }
    }

    /// The checks every justified request passes before a decision: a named user, a
    /// justification whose text has enough visible characters, and a reason that fits the
    /// incident (training for exercises, and only for them). Returns the trimmed text.
    ///
    /// - Throws: ``IncidentError`` `named_user_required`, `justification_required`, `justification_invalid`.
    func justified(user: String?, _ justification: Justification?) async throws(IncidentError) -> (String, Justification, String) {
        guard let user else {
            throw IncidentError(.namedUserRequired, message: "consultations are made by named users; connect with a user's key", field: "user")
        }
        guard let justification else {
            throw IncidentError(.justificationRequired, message: "a consultation needs a reason code, a text and the incident", field: "justification")
        }
        let text = justification.text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard Justification.textLength.contains(Justification.visibleLength(of: text)) else {
            throw IncidentError(
                .justificationRequired, message: "the justification text has \(Justification.textLength.lowerBound) to "
                    + "\(Justification.textLength.upperBound) visible characters", field: "justification.text")
        }
        let exercise = try? await database.run { db in try? IncidentService.incident(justification.incident, in: db).exercise }
        if let exercise = exercise ?? nil, exercise != (justification.reason == .training) {
            throw IncidentError(
                .justificationInvalid,
                message: exercise ? "incident \(justification.incident) is an exercise: the reason is training" : "training is a reason for exercises only",
                field: "justification.reason")
        }
        return (user, justification, text)
    }

    /// Lets `agency` receive the thumbnails of the cameras an incident selects that it may see,
    /// asked for by a named user with a justification: one decision per incident and agency,
    /// recorded (`thumbnails.started`) like a view, and refusals too (`thumbnails.refused`).
    /// The thumbnails it covers are those of the incident's cameras the agency's grants allow,
    /// as the incident's journal and the grants say at each moment; it ends with the incident
    /// (or ``stopThumbnails(incident:agency:user:)``).
    ///
    /// - Throws: ``IncidentError`` as ``justified(user:_:)``, `incident_not_found`, `not_participant`.
    public func startThumbnails(agency: String, user: String?, justification: Justification?, source: String? = nil) async throws {
        func refuse(_ error: IncidentError) async throws -> Never {
            try await database.run { db in
                try db.transaction {
                    try AuditLog.append(AuditRecord(
                        action: "thumbnails.refused", agency: agency, user: user, reason: justification?.reason.rawValue,
                        justification: justification?.text, incident: justification?.incident, source: source, details: ["code": error.code]), in: db)
                }
            }
            throw error
        }
        let (named, given, text): (String, Justification, String)
        do {
            (named, given, text) = try await justified(user: user, justification)
        } catch {
            try await refuse(error)
        }
        let incident = try await database.run { db in try? IncidentService.incident(given.incident, in: db) }
        guard let incident, incident.status.holdsSelection else {
            try await refuse(IncidentError(.incidentNotFound, message: "there is no live incident \(given.incident)", field: "given.incident"))
        }
        guard incident.leadAgency == agency || incident.details.participants.contains(agency) else {
            try await refuse(IncidentError(
                .notParticipant, message: "\(agency) does not take part in incident \(incident.id)", field: "given.incident"))
        }
        try await database.run { db in
            let badge = try db.query("SELECT badge FROM users WHERE id = ?", [.text(named)]).first?.text(0)
            try db.transaction {
                try AuditLog.append(AuditRecord(
                    action: "thumbnails.started", agency: agency, user: named, badge: badge, reason: given.reason.rawValue,
                    justification: text, incident: incident.id, source: source), in: db)
            }
        }
    }

    /// Records that `agency` no longer receives an incident's thumbnails.
    public func stopThumbnails(incident: Int64, agency: String, user: String?) async throws {
        try await database.run { db in
            try db.transaction { try AuditLog.append(AuditRecord(action: "thumbnails.stopped", agency: agency, user: user, incident: incident), in: db) }
        }
    }

    /// A view recorded open, as a relay needs it to keep serving it under the decision function.
    public struct RecordedView: Sendable, Equatable {
        public var id: String
        public var agency: String
        public var user: String
        public var camera: String
        public var mode: AccessMode
        public var incident: Int64
        public var grant: String
    }

    /// The views recorded open (as a coordinator starts: those relay nodes may still serve).
    public func recordedOpenViews() async throws -> [RecordedView] {
        try await database.read { db in
            try db.query("SELECT id, agency, user, camera_id, mode, incident_id, grant_id FROM views WHERE stopped_at IS NULL ORDER BY started_at").map { row in
                RecordedView(
                    id: try row.text("id"), agency: try row.text("agency"), user: try row.text("user"), camera: try row.text("camera_id"),
                    mode: AccessMode(rawValue: try row.text("mode")) ?? .live, incident: try row.integer("incident_id"), grant: try row.text("grant_id"))
            }
        }
    }

    /// Ends the views a stopped or crashed server left open (`only`: those of them), auditing
    /// each (`view.stopped`, `reason`: `server_restarted` by default); returns how many.
    public func closeDanglingViews(only ids: Set<String>? = nil, reason: String = "server_restarted") async throws -> Int {
        try await database.run { db in
            try db.transaction {
                let open = try db.query("SELECT id, agency, user, camera_id, mode, incident_id, grant_id FROM views WHERE stopped_at IS NULL")
                    .filter { row in ids.map { (try? row.text("id")).map($0.contains) ?? false } ?? true }
                let now = Date()
                for row in open {
                    try db.query("UPDATE views SET stopped_at = ? WHERE id = ?", [.text(IncidentService.timestamp(now)), .text(try row.text("id"))])
                    try AuditLog.append(AuditRecord(
                        action: try row.optionalText("mode") == AccessMode.export.rawValue ? "export.stopped" : "view.stopped", at: now, agency: try row.optionalText("agency"),
                        user: try row.optionalText("user"), cameras: [try row.text("camera_id")], reason: reason, incident: try row.optionalInteger("incident_id"), grant: try row.optionalText("grant_id"),
                        details: ["view": try row.text("id"), "mode": try row.text("mode")]), in: db)
                }
                return open.count
            }
        }
    }

    /// Stops a consultation as ``stop(view:agency:user:at:)`` does, for a view that has ended
    /// whatever the database says. When the database cannot take the end now (a full disk), it is
    /// recorded once it can (tried after 1 s, 2 s, 4 s … up to every 30 s), at the moment the view
    /// ended, without holding up the caller: the view is neither listed as watched on nor left
    /// without its end until a restart. Any other refusal (already stopped) leaves nothing to record.
    public func stopEventually(view: String, agency: String, user: String?) async {
        let ended = Date()
        let stopped = { try await self.stop(view: view, agency: agency, user: user, at: ended) }
        do {
            try await stopped()
        } catch where Database.isStorageFailure(error) {
            Task { _ = try? await Database.retryingStorageFailures(waitFirst: true, stopped) }
        } catch {}
    }

    /// Stops a consultation and audits it; only the user who started it (or their agency) may.
    /// `at`: when it ended, for an end recorded late (the database could not take it at once).
    public func stop(view: String, agency: String, user: String?, at ended: Date = Date()) async throws {
        try await database.run { db in
            guard let row = try db.query(
                "SELECT agency, user, camera_id, mode, incident_id, grant_id, stopped_at FROM views WHERE id = ?", [.text(view)]
            ).first else {
                throw IncidentError(.viewNotFound, message: "there is no view \(view)", field: "view")
            }
            let (owner, ownerUser) = (try row.optionalText("agency"), try row.optionalText("user"))
            guard owner == agency, user == nil || user == ownerUser else {
                throw IncidentError(.notYourView, message: "view \(view) belongs to someone else", field: "view")
            }
            guard try row.optionalText("stopped_at") == nil else { throw IncidentError(.viewStopped, message: "view \(view) is already stopped", field: "view") }
            let now = ended
            try db.transaction {
                try db.query("UPDATE views SET stopped_at = ? WHERE id = ?", [.text(IncidentService.timestamp(now)), .text(view)])
                try AuditLog.append(AuditRecord(
                    action: try row.optionalText("mode") == AccessMode.export.rawValue ? "export.stopped" : "view.stopped", at: now, agency: agency,
                    user: try row.optionalText("user"), cameras: [try row.text("camera_id")], incident: try row.optionalInteger("incident_id"), grant: try row.optionalText("grant_id"),
                    details: ["view": view, "mode": try row.text("mode")]), in: db)
            }
        }
    }
}

/// A consultation going on now, as the agencies coordinating its incident or the camera's owner
/// see it: who watches which camera, since when, and for what reason (the free text of the
/// justification stays in the audit log).
public struct OpenView: Sendable, Codable, Equatable {
    public var view: String
    public var agency: String
    public var user: String
    public var camera: String
    public var mode: AccessMode
    public var incident: Int64
    public var reason: String
    public var startedAt: Date
}

extension AccessService {
    /// Which of `views` (each a camera and the agency watching it) under `incident` `agency` is
    /// shown in `view.list`: those of cameras it may see there, and its own.
    public func viewsShown(under incident: Int64, to agency: String, of views: [(camera: String, viewer: String)]) async throws -> [Bool] {
        let visible = try await visibleCameras(views.map(\.camera), agency: agency, incident: incident)
        return views.map { visible.contains($0.camera) || $0.viewer == agency }
    }

    /// The consultations going on now: those under `incident`, or those of the cameras `owner`
    /// owns (either filter may be nil), oldest first.
    public func openViews(incident: Int64? = nil, owner: String? = nil) async throws -> [OpenView] {
        try await database.run { db in
            try db.query(
                """
                SELECT v.id, v.agency, v.user, v.camera_id, v.mode, v.incident_id, v.reason, v.started_at
                FROM views v JOIN cameras c ON c.id = v.camera_id
                WHERE v.stopped_at IS NULL AND (?1 IS NULL OR v.incident_id = ?1) AND (?2 IS NULL OR c.owner = ?2)
                ORDER BY v.started_at, v.id
                """,
                [incident.map(SQLValue.integer) ?? .null, owner.map(SQLValue.text) ?? .null]
            ).map { row in
                OpenView(
                    view: try row.optionalText("id") ?? "", agency: try row.optionalText("agency") ?? "", user: try row.optionalText("user") ?? "", camera: try row.optionalText("camera_id") ?? "",
                    mode: AccessMode(rawValue: try row.optionalText("mode") ?? "") ?? .live, incident: try row.optionalInteger("incident_id") ?? 0, reason: try row.optionalText("reason") ?? "",
                    startedAt: IncidentService.date(try row.optionalText("started_at") ?? ""))
            }
        }
    }
}
