import Bus
import Foundation
import Incidents
import Logging
import MediaRelay
import Streams
import VigilProtocol

/// Gives each agency its own copy of an incident's changes and snapshots: only the cameras the
/// grant decision lets it watch, so that an agency without a grant receives nothing of a camera.
public struct ChannelPublisher: Sendable {
    let bus: BusServer
    let incidents: IncidentService
    let access: AccessService
    let channels: ChannelMembers
    /// The relay that opens the feeds of the cameras incidents select.
    let relay: Relay?
    let logger: Logger
    /// What owners were told their incident-bound grants make available.
    let grantUses = IncidentGrantLedger()
    /// The agencies that asked for an incident's thumbnails.
    let thumbnailConsents = ThumbnailConsents()
    /// What each agency may watch of each live incident, for the camera events.
    let visibility = VisibilityCache()

    /// Publishes a committed change on each topic of the agencies taking part after it (a
    /// hand-over keeps the former lead; a closing reaches everyone, then the channel takes no
    /// more subscriptions). An agency whose copy cannot be made gets nothing: its follower sees
    /// a gap and takes a new snapshot, so nothing is lost silently.
    public func publish(_ change: IncidentChange) async {
        _ = try? await publish(change, replyFor: nil)
    }

    /// Tells each agency that came to take part in the incident, or no longer does, on its
    /// `incidents/AGENCY/` channel: so that a console or a dispatch system learns of incidents it
    /// was not told about elsewhere, and follows their channels.
    private func announce(_ change: IncidentChange, to agencies: (joined: Set<String>, left: Set<String>)) {
        for agency in agencies.joined.sorted() {
            bus.publish(on: .incidents(agency: agency), seq: change.sequence, type: "incident.joined", at: change.at, body: ["incident": change.incident])
        }
        for agency in agencies.left.sorted() {
            bus.publish(
                on: .incidents(agency: agency), seq: change.sequence, type: "incident.left", at: change.at,
                body: IncidentLeft(incident: change.incidentId, status: change.incident.status.rawValue))
        }
    }

    private struct IncidentLeft: Encodable {
        let incident: Int64
        let status: String
    }

    /// Publishes a committed change as ``publish(_:)`` does and returns `requester`'s copy for
    /// its reply, made from the same reading of the selection. Every agency's copy comes from one
    /// reading of the database (on its read-only connection, not the writer's queue).
    public func publish(_ change: IncidentChange, replyFor requester: String?) async throws -> IncidentChange? {
        announce(change, to: channels.update(change.incident))
        relay?.follow(change)
        let generation = visibility.forget(after: change)
        let selection = await currentSelection(for: change)
        let members = ChannelMembers.agencies(of: change.incident).sorted()
        // A requester that no longer takes part (after handing the lead over, say) still gets its reply.
        let readers = requester.map { members.contains($0) ? members : members + [$0] } ?? members
        let copies: [String: (change: IncidentChange, visibility: CameraVisibility)]
        do {
            copies = try await self.copies(of: change, for: readers, selection: selection)
        } catch {
            // Nobody's copy: every follower sees a gap and takes a new snapshot, so nothing is lost silently.
            logger.error("channel copies failed", metadata: ["incident.id": "\(change.incidentId)", "error": "\(error)"])
            if requester != nil { throw error }
            return nil
        }
        if selection != nil {
            visibility.store(copies.filter { members.contains($0.key) }.mapValues { Set($0.visibility.allowed.keys) }, incident: change.incidentId, readIn: generation)
        }
        for agency in members {
            guard let (copy, visible) = copies[agency] else { continue }
            bus.publish(
                on: .incident(change.incidentId, agency: agency), seq: change.sequence, type: "incident.\(change.change.rawValue)", at: change.at,
                body: copy)
            do {
                try await tellOwners(change, agency: agency, visibility: visible, reset: selection != nil)
            } catch {
                logger.error("owner notice failed", metadata: ["incident.id": "\(change.incidentId)", "agency": "\(agency)", "error": "\(error)"])
            }
        }
        if change.change == .closed { grantUses.forget(incident: change.incidentId) }
        return requester.flatMap { copies[$0]?.change }
    }

    /// Tells owners, on their channels, when the change alters what their incident-bound grants
    /// make available to `agency` (stored and audited as `grant.applied`), and audits once each
    /// limit that keeps such a grant from applying (`grant.limit-exceeded`).
    private func tellOwners(_ change: IncidentChange, agency: String, visibility: CameraVisibility, reset: Bool) async throws {
        let key = IncidentGrantLedger.Key(incident: change.incidentId, agency: agency)
        var notices: [IncidentCamerasAvailable]
        if reset {
            notices = grantUses.replace(key, with: visibility.underIncidentGrants)
        } else if grantUses.knows(key) {
            notices = grantUses.update(key, adding: visibility.underIncidentGrants, removing: change.removed)
        } else {
            // The first change of this incident since the server started: start from its whole selection.
            let selection = try await incidents.snapshot(change.incidentId).cameras.map(\.id)
            let whole = try await access.visibility(of: selection, agency: agency, incident: change.incidentId)
            notices = grantUses.replace(key, with: whole.underIncidentGrants)
        }
        for notice in notices {
            let recorded = try await access.record(notice)
            bus.publish(on: .owner(recorded.owner), seq: recorded.sequence, type: "incident.cameras-available", at: recorded.at, body: recorded)
        }
        for (owner, refusal) in visibility.limitRefusals.sorted(by: { $0.key < $1.key })
        where grantUses.firstRefusal(key, owner: owner, code: refusal.code) {
            try await access.recordLimitExceeded(owner: owner, agency: agency, incident: change.incidentId, code: refusal.code, message: refusal.message)
        }
    }

    /// Publishes a camera's feed state, latest-wins (`seq` 0: a newer state replaces an older
    /// one, no resynchronisation needed), on the `cameras/AGENCY/` channel of every agency that
    /// takes part in an incident selecting the camera and may see it.
    public func cameraState(_ camera: String, _ state: FeedState, incidents ids: Set<Int64>) async {
        let body = CameraStateEvent(camera: camera, state: state)
        for agency in await audience(of: camera, incidents: ids) {
            bus.publish(on: .cameras(agency: agency), seq: 0, type: "camera.state", body: body)
        }
    }

    /// Publishes a camera's thumbnail, latest-wins like its state, on the `thumbnails/AGENCY/`
    /// channel of the same agencies, but only those covered by a recorded decision: the camera's
    /// owner (its own picture), or an agency whose named user asked for the thumbnails of one of
    /// the incidents selecting the camera, with a justification (`thumbnails.start`, audited).
    public func thumbnail(_ thumbnail: Thumbnail, incidents ids: Set<Int64>) async {
        let body = ThumbnailEvent(thumbnail)
        let owner = try? await access.owner(ofCamera: thumbnail.camera)
        for agency in await audience(of: thumbnail.camera, incidents: ids)
        where agency == owner || thumbnailConsents.covers(agency, anyOf: ids) {
            bus.publish(on: .thumbnails(agency: agency), seq: 0, type: "camera.thumbnail", at: thumbnail.takenAt, body: body)
        }
    }

    /// The agencies taking part in one of `ids` that may watch `camera` live for it.
    private func audience(of camera: String, incidents ids: Set<Int64>) async -> [String] {
        var audience = Set<String>()
        for incident in ids.sorted() {
            guard let visible = try? await visibleSelection(of: incident) else { continue }
            for (agency, cameras) in visible where cameras.contains(camera) { audience.insert(agency) }
        }
        return audience.sorted()
    }

    /// What each agency taking part in `incident` may watch of its selection: from the cache,
    /// else read once for all the agencies it lacks.
    private func visibleSelection(of incident: Int64) async throws -> [String: Set<String>] {
        var known: [String: Set<String>] = [:]
        var missing: [String] = []
        for agency in channels.agencies(ofIncident: incident) {
            if let cameras = visibility.visible(incident: incident, agency: agency) { known[agency] = cameras } else { missing.append(agency) }
        }
        guard !missing.isEmpty else { return known }
        let generation = visibility.generation
        let selection = try await incidents.snapshot(incident).cameras.map(\.id)
        let read = try await access.visibility(of: selection, agencies: missing, incident: incident).mapValues { Set($0.allowed.keys) }
        visibility.store(read, incident: incident, readIn: generation)
        return known.merging(read) { $1 }
    }

    /// The incident's current selection when the change may alter what agencies may see (then
    /// each copy carries the agency's whole visible selection), else nil.
    private func currentSelection(for change: IncidentChange) async -> [SelectedCamera]? {
        guard resetsVisibility(change) else { return nil }
        if change.change == .opened { return change.added }
        return try? await incidents.snapshot(change.incidentId).cameras
    }

    /// Tells every live incident that `agency` takes part in that what it may see changed (a
    /// grant to it was created, revoked or expired), in sequence on each channel.
    func accessChanged(for agency: String, by actor: String, reason: String) async {
        visibility.forgetAll()
        for incident in channels.incidents(withAgency: agency) {
            do {
                await publish(try await incidents.recordAccessChange(incident, by: actor, reason: reason))
            } catch {
                logger.error("access change not recorded", metadata: ["incident.id": "\(incident)", "error": "\(error)"])
            }
        }
    }

    /// Each of `agencies`' copy of a change. With the current `selection` (a change that may
    /// alter what agencies see), `added` lists every camera the agency may see and `removed`
    /// every other one it may have received; otherwise the change's own cameras are filtered.
    /// `removed` names only cameras of the agency's own or of owners that granted it something
    /// (it may name some the agency never received: removing them changes nothing); of every
    /// other owner's cameras the copy says nothing, not even how many were selected.
    private func copies(
        of change: IncidentChange, for agencies: [String], selection: [SelectedCamera]?
    ) async throws -> [String: (change: IncidentChange, visibility: CameraVisibility)] {
        let considered = selection ?? (change.added + change.relabelled)
        let visibilities = try await access.visibility(of: considered.map(\.id), agencies: agencies, incident: change.incidentId)
        let mayBeRemoved = Set(change.removed).union(selection?.map(\.id) ?? [])
        let shared = mayBeRemoved.isEmpty ? [:] : try await access.camerasSharedWith(agencies, among: Array(mayBeRemoved))
        var copies: [String: (change: IncidentChange, visibility: CameraVisibility)] = [:]
        for agency in agencies {
            let visible = visibilities[agency] ?? CameraVisibility()
            var copy = change
            var removed = Set(change.removed)
            if let selection {
                copy.added = selection.filter { visible.allowed[$0.id] != nil }
                removed.formUnion(selection.map(\.id).filter { visible.allowed[$0] == nil })
                copy.relabelled = []
            } else {
                copy.added = change.added.filter { visible.allowed[$0.id] != nil }
                copy.relabelled = change.relabelled.filter { visible.allowed[$0.id] != nil }
            }
            copy.removed = removed.intersection(shared[agency] ?? []).sorted()
            copies[agency] = (copy, visible)
        }
        return copies
    }

    /// `agency`'s view of a snapshot: the cameras it may see, and nothing of the others.
    func copy(of snapshot: IncidentSnapshot, for agency: String) async throws -> IncidentSnapshot {
        var copy = snapshot
        let visible = try await access.visibleCameras(snapshot.cameras.map(\.id), agency: agency, incident: snapshot.incident.id)
        copy.cameras = snapshot.cameras.filter { visible.contains($0.id) }
        return copy
    }

    private func resetsVisibility(_ change: IncidentChange) -> Bool {
        switch change.change {
        case .opened, .handedOver, .accessChanged: true
        case .updated: change.fields.contains("status") || change.fields.contains("participants")
        case .redrawn, .moved, .closed: false
        }
    }

    public init(
        bus: BusServer, incidents: IncidentService, access: AccessService, channels: ChannelMembers, relay: Relay?, logger: Logger
    ) {
        self.bus = bus
        self.incidents = incidents
        self.access = access
        self.channels = channels
        self.relay = relay
        self.logger = logger
    }
}

/// The body of a `camera.state` event.
public struct CameraStateEvent: Encodable {
    var camera: String
    var state: String
    var reason: String?

    init(camera: String, state: FeedState) {
        let wire = WireFeedState(state)
        (self.camera, self.state, reason) = (camera, wire.state, wire.reason)
    }
}

