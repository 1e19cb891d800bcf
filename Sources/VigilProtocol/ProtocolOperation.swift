import Bus

/// Every operation of the bus (the command endpoint) and of a relay's media endpoint (`feed.*`),
/// by the name requests carry in `op`. `docs/protocol.md` describes each; a test checks that
/// it names every one.
public enum ProtocolOperation: String, Sendable, CaseIterable {
    case sessionIdentity = "session.identity"
    case incidentOpen = "incident.open"
    case incidentUpdate = "incident.update"
    case incidentHandover = "incident.handover"
    case incidentRedraw = "incident.redraw"
    case incidentMove = "incident.move"
    case incidentClose = "incident.close"
    case incidentSnapshot = "incident.snapshot"
    case incidentList = "incident.list"
    case grantList = "grant.list"
    case grantCreate = "grant.create"
    case grantRevoke = "grant.revoke"
    case accessCheck = "access.check"
    case viewStart = "view.start"
    case viewStop = "view.stop"
    case viewList = "view.list"
    case holdCreate = "hold.create"
    case holdList = "hold.list"
    case holdRelease = "hold.release"
    case thumbnailsStart = "thumbnails.start"
    case thumbnailsStop = "thumbnails.stop"
    case userAdd = "user.add"
    case userList = "user.list"
    case userSuspend = "user.suspend"
    case userReinstate = "user.reinstate"
    case userRemove = "user.remove"
    case agencyRotateKey = "agency.rotate-key"
    case cameraUpdate = "camera.update"
    case cameraRetire = "camera.retire"
    case camerasSelect = "cameras.select"
    case auditQuery = "audit.query"
    case auditVerify = "audit.verify"
    case relayRegister = "relay.register"
    case relayReport = "relay.report"
    case relayDeregister = "relay.deregister"
    case footageExport = "footage.export"
    case footagePackage = "footage.package"
    case incidentHeadPassed = "incident.head-passed"
    case feedOpen = "feed.open"
    case feedLink = "feed.link"
    case feedClose = "feed.close"
    case feedUpstream = "feed.upstream"
    case footageFetch = "footage.fetch"
    case consoleCode = "console.code"
}

extension BusClient {
    /// Sends one request of `operation` and waits for its reply (see ``BusClient/request(_:body:as:timeout:)``).
    public func request<Body: Encodable, Result: Decodable>(
        _ operation: ProtocolOperation, body: Body, as type: Result.Type, timeout: Duration = .seconds(5)
    ) throws(BusClientError) -> Result {
        try request(operation.rawValue, body: body, as: type, timeout: timeout)
    }

    /// Sends a request of `operation` without waiting for its reply; returns its id.
    public func send<Body: Encodable>(_ operation: ProtocolOperation, body: Body) throws(BusClientError) -> String {
        try send(operation.rawValue, body: body)
    }
}
