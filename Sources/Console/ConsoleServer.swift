import Bus
import Coordinator
import ErrorVocabulary
import Foundation
import Hummingbird
import NIOCore
import Incidents
import Logging
import ServiceLifecycle
import VigilProtocol

/// The codes of the console's own boundary (its HTTP API); the bus's operations answer with
/// theirs. Each is explained in `docs/protocol.md`, "The operator console".
public enum ConsoleErrorCode: String, ErrorCode {
    /// No session, or it ended (logged out, shift or clearance over, user suspended).
    case sessionRequired = "session_required"
    /// The login code is unknown, used already or expired.
    case loginCodeInvalid = "login_code_invalid"
    /// A change came without the session's anti-forgery token.
    case csrfInvalid = "csrf_invalid"
    /// The operation is not one the console passes to the bus.
    case operationNotAllowed = "operation_not_allowed"
    /// The request's JSON is not what the route reads.
    case requestInvalid = "request_invalid"
}

typealias ConsoleError = CodedError<ConsoleErrorCode>

/// The operator console: a web server (Hummingbird) for a crisis room's browsers.
///
/// It holds no authority of its own. A browser logs in with a one-time code that a named user
/// asked for over CURVE (``ConsoleCodes``); from then on each of its requests is handed to the
/// bus as that user's (``BusServer/submit(_:as:origin:media:)``), through the same operations,
/// decision function, justification and audit as a request from the bus, marked `console` in
/// the audit log. Live video does not pass through it: the page plays a link's WebSocket on the
/// relay's HTTP endpoint, which the fan-out serves. It serves its page, Leaflet (Debian's
/// `libjs-leaflet`) and the region's basemap from the fixtures: nothing is fetched at run time.
public struct ConsoleServer: Sendable {
    public struct Configuration: Sendable {
        public var host: HostAddress
        /// 0: any free port (``application(onListening:)`` says which).
        public var port: Int
        /// Where Leaflet's `leaflet.js` and `leaflet.css` are (Debian: /usr/share/javascript/leaflet).
        public var leafletFolder: URL
        /// The basemap's layers, drawn in this order.
        public var basemap: [BasemapLayer]
        /// The attributions the basemap's licences require, shown on the map.
        public var attributions: [String]
        /// Where the map opens: latitude, longitude, zoom.
        public var view: (latitude: Double, longitude: Double, zoom: Int)

        public init(
            host: HostAddress, port: Int, leafletFolder: URL, basemap: [BasemapLayer], attributions: [String], view: (latitude: Double, longitude: Double, zoom: Int)
        ) {
            (self.host, self.port, self.leafletFolder, self.basemap) = (host, port, leafletFolder, basemap)
            (self.attributions, self.view) = (attributions, view)
        }
    }

    /// A GeoJSON file of the fixtures drawn under the incidents.
    public struct BasemapLayer: Sendable, Encodable {
        /// The layer's name in its address (`/basemap/NAME.geojson`) and on the map's control.
        public var name: String
        public var file: URL
        /// How it is drawn: `area` (outlined polygons), `road`, `line` (a transit line), `station`.
        public var style: String

        public init(name: String, file: URL, style: String) {
            (self.name, self.file, self.style) = (name, file, style)
        }

        enum CodingKeys: String, CodingKey { case name, style }
    }

    /// The operations the page may ask for, and whether each goes to the relay's media endpoint.
    /// Nothing else passes: the console is for a crisis room's work (an owner's administrator
    /// there shares and takes back its cameras; the bus decides who may), not for administering
    /// keys, users or the registry.
    static let operations: [ProtocolOperation: Bool] = [
        .sessionIdentity: false, .incidentList: false, .incidentSnapshot: false, .incidentHeadPassed: false, .incidentOpen: false, .incidentRedraw: false,
        .incidentMove: false, .incidentClose: false, .incidentUpdate: false, .camerasSelect: false, .viewList: false,
        .grantList: false, .grantCreate: false, .grantRevoke: false, .auditQuery: false, .auditVerify: false, .thumbnailsStart: false, .thumbnailsStop: false,
        .feedLink: true, .feedClose: true,
    ]

    static let cookie = "vigil_console"

    let configuration: Configuration
    let bus: BusServer
    let codes: ConsoleCodes
    let users: UserDirectory
    let sessions = ConsoleSessions()
    let thumbnails: ConsoleThumbnails
    let followers: ConsoleFollowers
    let logger: Logger

    /// - Parameters:
    ///   - mayFollow: whether the bus lets an identity subscribe to a topic (the pages are told
    ///     of changes on those channels only).
    ///   - viewListShows: whether an agency's `view.list` under an incident shows a view of a
    ///     camera by an agency (the pages are told of those views starting and stopping only).
    public init(
        configuration: Configuration, bus: BusServer, codes: ConsoleCodes, users: UserDirectory,
        mayFollow: @escaping @Sendable (BusIdentity, String) -> Bool,
        viewListShows: @escaping @Sendable (_ camera: String, _ viewer: String, _ incident: Int64, _ agency: String) async -> Bool,
        logger: Logger
    ) {
        (self.configuration, self.bus, self.codes, self.users, self.logger) = (configuration, bus, codes, users, logger)
        thumbnails = ConsoleThumbnails(bus: bus)
        followers = ConsoleFollowers(bus: bus, mayFollow: mayFollow, viewListShows: viewListShows)
    }

    /// The web server as a service of the server's `ServiceGroup`; `onListening` is told the
    /// console's address (`http://HOST:PORT`) once it listens.
    public func application(onListening: @escaping @Sendable (String) async -> Void) -> some Service {
        let router = Router()
        addRoutes(to: router)
        let host = configuration.host
        return Application(
            router: router, configuration: .init(address: .hostname(host.literal, port: configuration.port), serverName: "vigil-console"),
            services: [thumbnails, followers],
            onServerRunning: { channel in await onListening(host.httpBase(port: channel.localAddress?.port ?? 0)) }, logger: logger)
    }

    private func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("/") { _, _ in
            var page = Self.asset(ConsoleAssets.page, type: "text/html; charset=utf-8")
            // Scripts, styles and data from the console only. Video and thumbnails come from the
            // relay that serves each camera: the server's own, or a relay node on another host,
            // which the page learns of from each link (so any WebSocket and image address).
            page.headers[.contentSecurityPolicy] = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: http: https:; "
                + "media-src 'self' blob:; connect-src 'self' ws: wss:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
            return page
        }
        router.get("/console.js") { _, _ in Self.asset(ConsoleAssets.script, type: "text/javascript; charset=utf-8") }
        router.get("/console.css") { _, _ in Self.asset(ConsoleAssets.style, type: "text/css; charset=utf-8") }
        router.get("/leaflet/**") { _, context in try leafletFile(context.parameters.getCatchAll().joined(separator: "/")) }
        router.get("/basemap") { _, _ in
            try Self.json(BasemapIndex(layers: configuration.basemap, attributions: configuration.attributions, view: [
                configuration.view.latitude, configuration.view.longitude, Double(configuration.view.zoom),
            ]))
        }
        router.get("/basemap/:name") { _, context in try basemapFile(context.parameters.require("name")) }
        router.post("/api/login") { request, _ in try await login(request) }
        router.post("/api/logout") { request, _ in
            try Self.requireSameOrigin(request)
            if let token = request.cookies[Self.cookie]?.value {
                sessions.end(token)
                followers.end(session: token)
            }
            var response = try Self.json(["logged_out": true])
            response.setCookie(Self.sessionCookie("", maxAge: 0))
            return response
        }
        router.get("/api/session") { request, _ in
            let (session, user) = try await currentSession(request)
            return try Self.json(SessionInfo(session, user))
        }
        router.post("/api/request") { request, _ in try await forward(request) }
        router.get("/api/events") { request, _ in try await events(request) }
        // The newest thumbnail of a camera that the session's agency received on its thumbnail
        // channel (after `thumbnails.start` for an incident, or as the camera's owner).
        router.get("/api/thumbnails/:camera") { request, context in
            let (session, _) = try await currentSession(request)
            let camera = try context.parameters.require("camera")
            guard let jpeg = thumbnails.jpeg(of: camera, for: session.identity.agency) else {
                throw ConsoleFailure(.notFound, ConsoleError(.requestInvalid, message: "no thumbnail of \(camera) for \(session.identity.agency) yet"))
            }
            return Response(status: .ok, headers: Self.headers(type: "image/jpeg"), body: .init(byteBuffer: ByteBuffer(bytes: jpeg)))
        }
    }

    // MARK: Login and sessions

    private struct LoginBody: Decodable {
        let code: String
    }

    /// What the page learns of its session: who, until when, and its anti-forgery token.
    private struct SessionInfo: Encodable {
        let agency: String
        let user: String
        let name: String
        let roles: [String]
        let csrf: String
        let endsAt: Date

        init(_ session: ConsoleSessions.Session, _ user: User) {
            (agency, self.user, name, roles) = (session.identity.agency, user.id, user.name, user.roles.map(\.rawValue))
            (csrf, endsAt) = (session.csrf, session.ends)
        }
    }

    private func login(_ request: Request) async throws -> Response {
        try Self.requireSameOrigin(request)
        let body = try await Self.decode(LoginBody.self, from: request)
        guard let login = codes.redeem(body.code) else {
            throw ConsoleFailure(.unauthorized, ConsoleError(.loginCodeInvalid, message: "this code is unknown, was used already or expired: ask for a new one with vigil console login"))
        }
        let (token, session) = sessions.open(login)
        let user = try await activeUser(session)
        logger.info("console login", metadata: ["agency": "\(session.identity.agency)", "user": "\(user.id)"])
        var response = try Self.json(SessionInfo(session, user))
        response.setCookie(Self.sessionCookie(token, maxAge: max(1, Int(session.ends.timeIntervalSinceNow))))
        return response
    }

    /// `Secure` (browsers accept it on http://localhost and 127.0.0.1 too), `HttpOnly` (no
    /// script reads it), `SameSite=Strict` (no other site's page sends it).
    private static func sessionCookie(_ value: String, maxAge: Int) -> Cookie {
        Cookie(name: cookie, value: value, maxAge: maxAge, path: "/", secure: true, httpOnly: true, sameSite: .strict)
    }

    /// The request's session and its user, who must still be active with a valid clearance.
    private func currentSession(_ request: Request) async throws -> (ConsoleSessions.Session, User) {
        try await session(of: request.cookies[Self.cookie]?.value)
    }

    /// The session whose cookie is `token`, and its user, who must still be active and cleared.
    private func session(of token: String?) async throws -> (ConsoleSessions.Session, User) {
        guard let token, let session = sessions.session(token) else {
            throw ConsoleFailure(.unauthorized, ConsoleError(.sessionRequired, message: "log in first: vigil console login --user USER prints a code"))
        }
        do {
            return (session, try await activeUser(session))
        } catch {
            sessions.end(token)
            throw error
        }
    }

    private func activeUser(_ session: ConsoleSessions.Session) async throws -> User {
        guard let id = session.identity.user, let user = try await users.user(id), user.agency == session.identity.agency, user.isCleared() else {
            throw ConsoleFailure(.unauthorized, ConsoleError(.sessionRequired, message: "the session's user is no longer active or cleared"))
        }
        return user
    }

    // MARK: The bus's operations

    /// Hands `{op, body}` to the bus as the session's user and answers the bus's reply as it is.
    private func forward(_ request: Request) async throws -> Response {
        try Self.requireSameOrigin(request)
        let (session, _) = try await currentSession(request)
        guard let csrf = request.headers[.init("X-Vigil-CSRF")!], csrf == session.csrf else {
            throw ConsoleFailure(.forbidden, ConsoleError(.csrfInvalid, message: "the request lacks this session's X-Vigil-CSRF token"))
        }
        // The body is passed on as it came: the bus's operation reads and checks it.
        let bytes = Data(try await request.body.collect(upTo: 1 << 20).readableBytesView)
        guard let forwarded = try? JSONSerialization.jsonObject(with: bytes) as? [String: Any], let op = forwarded["op"] as? String else {
            throw ConsoleFailure(.badRequest, ConsoleError(.requestInvalid, message: "send {\"op\": OPERATION, \"body\": {...}}"))
        }
        guard let media = ProtocolOperation(rawValue: op).flatMap({ Self.operations[$0] }) else {
            throw ConsoleFailure(.forbidden, ConsoleError(.operationNotAllowed, message: "the console does not pass '\(op)' to the bus", field: "op"))
        }
        let frame = try JSONSerialization.data(withJSONObject: [
            "v": BusProtocol.version, "id": UUID().uuidString, "op": op, "body": forwarded["body"] ?? [String: Any](),
        ])
        let reply = await bus.submit(frame, as: session.identity, origin: "console", media: media)
        return Response(status: .ok, headers: Self.headers(type: "application/json"), body: .init(byteBuffer: ByteBuffer(bytes: reply)))
    }

    /// The session's page follows its agency's channels: a Server-Sent Events stream of the
    /// changes ``ConsoleFollowers`` passes on (`event: change`), a comment every 15 s, and
    /// `event: ended` when the session ends (checked before each message) or a newer stream of
    /// the session replaced this one.
    private func events(_ request: Request) async throws -> Response {
        let (session, _) = try await currentSession(request)
        let token = request.cookies[Self.cookie]?.value ?? ""
        let messages = followers.follow(session: token, as: session.identity)
        return Response(status: .ok, headers: Self.headers(type: "text/event-stream; charset=utf-8"), body: ResponseBody { [self] writer in
            // A page whose stream broke (the server restarted) asks again after 2 s.
            try await writer.write(ByteBuffer(string: "retry: 2000\n\n"))
            // A stream never ends by itself: without this the server's graceful shutdown would
            // wait for every page to go away.
            try await withGracefulShutdownHandler {
                for await message in messages {
                    guard (try? await self.session(of: token)) != nil else {
                        try await writer.write(ByteBuffer(string: Self.serverSentEvent("ended", #"{"reason":"session_required"}"#)))
                        break
                    }
                    switch message {
                    case .change(let change):
                        try await writer.write(ByteBuffer(string: Self.serverSentEvent("change", String(decoding: try Self.encoder.encode(change), as: UTF8.self))))
                    case .keepAlive:
                        try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                    case .replaced:
                        try await writer.write(ByteBuffer(string: Self.serverSentEvent("ended", #"{"reason":"replaced"}"#)))
                    }
                }
            } onGracefulShutdown: {
                followers.end(session: token)
            }
            try await writer.finish(nil)
        })
    }

    /// One Server-Sent Event; `data` is one line of JSON.
    static func serverSentEvent(_ name: String, _ data: String) -> String {
        "event: \(name)\ndata: \(data)\n\n"
    }

    /// A change must come from the console's own page: as JSON (a form of another site cannot
    /// send that without the browser asking first), and, when the browser says where the page
    /// came from, from this host. (With the session's `X-Vigil-CSRF` and `SameSite=Strict`, no
    /// other site's page can act, nor log a browser in to a session of its choosing.)
    static func requireSameOrigin(_ request: Request) throws {
        guard request.headers[.contentType]?.lowercased().hasPrefix("application/json") == true else {
            throw ConsoleFailure(.forbidden, ConsoleError(.csrfInvalid, message: "send JSON, with Content-Type: application/json"))
        }
        if let origin = request.headers[.origin], origin != "null" {
            let host = request.head.authority ?? ""
            guard let url = URL(string: origin), let originHost = url.host, Self.hostPart(host) == originHost.lowercased() else {
                throw ConsoleFailure(.forbidden, ConsoleError(.csrfInvalid, message: "a request from another site's page (\(origin))"))
            }
        }
    }

    /// `host` without its port, in lower case (`[::1]:7715` → `::1`).
    static func hostPart(_ host: String) -> String {
        var host = host.lowercased()
        if host.hasPrefix("["), let end = host.firstIndex(of: "]") { return String(host[host.index(after: host.startIndex)..<end]) }
        if let colon = host.lastIndex(of: ":") { host = String(host[..<colon]) }
        return host
    }

    // MARK: Files

    private func leafletFile(_ path: String) throws -> Response {
        // Leaflet's own files only: a plain relative path, no way up.
        guard path.range(of: #"^[A-Za-z0-9_-]+(/[A-Za-z0-9_.-]+)*\.(js|css|png)$"#, options: .regularExpression) != nil, !path.contains("..") else {
            throw ConsoleFailure(.notFound, ConsoleError(.requestInvalid, message: "no such file"))
        }
        let type = path.hasSuffix(".js") ? "text/javascript" : path.hasSuffix(".css") ? "text/css" : "image/png"
        return try Self.file(configuration.leafletFolder.appendingPathComponent(path), type: type)
    }

    private func basemapFile(_ name: String) throws -> Response {
        guard let layer = configuration.basemap.first(where: { "\($0.name).geojson" == name }) else {
            throw ConsoleFailure(.notFound, ConsoleError(.requestInvalid, message: "no basemap layer \(name)"))
        }
        return try Self.file(layer.file, type: "application/geo+json")
    }

    private static func file(_ url: URL, type: String) throws -> Response {
        guard let bytes = try? Data(contentsOf: url) else {
            throw ConsoleFailure(.notFound, ConsoleError(.requestInvalid, message: "\(url.lastPathComponent) is missing on the server"))
        }
        var headers = headers(type: type)
        headers[.cacheControl] = "max-age=3600"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    private static func asset(_ text: String, type: String) -> Response {
        Response(status: .ok, headers: headers(type: type), body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    // MARK: JSON

    private struct BasemapIndex: Encodable {
        let layers: [BasemapLayer]
        let attributions: [String]
        let view: [Double]
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = .withoutEscapingSlashes
        return encoder
    }()

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        Response(status: status, headers: headers(type: "application/json"), body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }

    private static func decode<T: Decodable>(_ type: T.Type, from request: Request) async throws -> T {
        let body = try await request.body.collect(upTo: 1 << 20)
        do {
            return try JSONDecoder().decode(type, from: Data(body.readableBytesView))
        } catch {
            throw ConsoleFailure(.badRequest, ConsoleError(.requestInvalid, message: "the body is not the JSON this route reads: \(error)"))
        }
    }

    /// Every answer: no caching of what a user saw, no framing by another site, no sniffing.
    static func headers(type: String) -> HTTPFields {
        var headers = HTTPFields()
        headers[.contentType] = type
        headers[.cacheControl] = "no-store"
        headers[.init("X-Content-Type-Options")!] = "nosniff"
        headers[.init("X-Frame-Options")!] = "DENY"
        headers[.init("Referrer-Policy")!] = "no-referrer"
        return headers
    }
}

/// An error of the console's API: its HTTP status, and its code and message as JSON.
struct ConsoleFailure: HTTPResponseError {
    let status: HTTPResponse.Status
    let error: ConsoleError

    init(_ status: HTTPResponse.Status, _ error: ConsoleError) {
        (self.status, self.error) = (status, error)
    }

    var headers: HTTPFields { ConsoleServer.headers(type: "application/json") }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var body: [String: String] = ["code": error.code, "message": error.message]
        if let field = error.field { body["field"] = field }
        let bytes = try JSONSerialization.data(withJSONObject: ["ok": false, "error": body], options: [.sortedKeys])
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
