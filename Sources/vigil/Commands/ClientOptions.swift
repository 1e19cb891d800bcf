import ArgumentParser
import Bus
import ErrorVocabulary
import Foundation
import MediaRelay
import Geo
import Incidents
import Streams
import VigilProtocol

/// An error a client command reports: `error: CODE: message` on stderr, exit status 1. Its code
/// is one of ``CommandFailureCode``, or the code of the error it passes on (the server's, the engine's).
typealias CommandFailure = CodedError<CommandFailureCode>

/// The command line's own codes (its data folder, files, the server's reply).
enum CommandFailureCode: String, ErrorCode {
    case auditBroken = "audit_broken"
    case badReply = "bad_reply"
    case batchUnreadable = "batch_unreadable"
    case certificateUnwritable = "certificate_unwritable"
    case checkpointFailed = "checkpoint_failed"
    case checkpointInvalid = "checkpoint_invalid"
    case checkpointUnreadable = "checkpoint_unreadable"
    case clusterKeysMissing = "cluster_keys_missing"
    case databaseUnusable = "database_unusable"
    case dataFolderInUse = "data_folder_in_use"
    case dataFolderInvalid = "data_folder_invalid"
    case dataMissing = "data_missing"
    case grantInvalid = "grant_invalid"
    case grantUnreadable = "grant_unreadable"
    case internalError = "internal_error"
    case keyGenerationFailed = "key_generation_failed"
    case keyMissing = "key_missing"
    case noMediaEndpoint = "no_media_endpoint"
    case outputUnwritable = "output_unwritable"
    case referenceInvalid = "reference_invalid"
    case sealedStreamFailed = "sealed_stream_failed"
    case regionMismatch = "region_mismatch"
    case registryUnreadable = "registry_unreadable"
    case relayNodeUnreachable = "relay_node_unreachable"
    case serverInfoInvalid = "server_info_invalid"
    case serverNotRunning = "server_not_running"
    case userExists = "user_exists"
}

/// Options every client command shares: where the server's data folder is, who is asking.
struct ClientOptions: ParsableArguments {
    @Option(help: "The server's data folder (its server.json and keys).")
    var data = "vigil-data"

    @Option(help: "The agency to act as; its secret certificate is read from DATA/keys/agencies.")
    var agency = "crisis-centre"

    @Option(help: "Act as this named user instead of the agency; the certificate is read from DATA/keys/users (see `vigil user add`).")
    var user: String?

    @Flag(help: "Print JSON for scripts instead of text.")
    var json = false

    @Option(help: "Seconds to wait for each answer, from the server or from the relay node it sends a view to (default 5; opening a view, 10).")
    var timeout: Double?

    func validate() throws {
        if let timeout, !(timeout.isFinite && timeout > 0 && timeout <= 300) { throw ValidationError("--timeout must be in (0, 300] seconds") }
        guard !agency.isEmpty, !agency.contains("/"), !agency.hasPrefix(".") else { throw ValidationError("--agency '\(agency)' is not an agency id") }
        if let user, !UserDirectory.isValidId(user) { throw ValidationError("--user '\(user)' is not a user id") }
    }

    var requestTimeout: Duration { .milliseconds(Int((timeout ?? 5) * 1000)) }
    /// Opening a view waits for the relay to decide it (and a camera still connecting): 10 s
    /// unless `--timeout` says otherwise, on the server and on a relay node it redirects to.
    var viewTimeout: Duration { .milliseconds(Int((timeout ?? 10) * 1000)) }

    /// The running server's description from the data folder.
    func serverInfo() throws -> ServerInfo {
        try DataFolder(path: data).runningServer()
    }

    /// A client connected as `agency` (or `user`) to the server recorded in the data folder;
    /// its requests go to the command endpoint, or to the media endpoint with `media`.
    func connect(media: Bool = false) throws -> BusClient {
        let folder = DataFolder(path: data)
        var info = try serverInfo()
        let serverKey = try CurveCertificate.read(folder.serverCertificate(secret: false))
        if let coordinators = info.cluster?.coordinators {
            let mine = BusProtocol.CoordinatorEndpoints(command: info.command, events: info.events, media: info.media)
            let (client, leader) = try connectToLeader(trying: [mine] + coordinators, serverKey: serverKey.publicKey)
            guard media else { return client }
            client.close()
            (info.command, info.events, info.media) = (leader.command, leader.events, leader.media)
        }
        if media {
            guard let endpoint = info.media else { throw CommandFailure(.noMediaEndpoint, message: "this server runs no relay") }
            info.command = endpoint
        }
        return try connect(command: info.command, events: info.events, serverKey: serverKey.publicKey)
    }

    /// A client of a cluster's leader: asks who it is (`session.identity`, at most 2 s per
    /// coordinator), following where `not_leader` answers say the leader is, and trying the next
    /// coordinator on no answer, until one answers or `--timeout` has passed.
    private func connectToLeader(
        trying candidates: [BusProtocol.CoordinatorEndpoints], serverKey: String
    ) throws -> (BusClient, BusProtocol.CoordinatorEndpoints) {
        let deadline = ContinuousClock.now.advanced(by: requestTimeout)
        // Read once, before any coordinator is asked: a missing key is `key_missing`, not a bus error.
        let keys = try clientKeys()
        let following = LeaderFollowingClient(coordinators: candidates) { coordinator throws(BusClientError) in
            try BusClient(configuration: BusClientConfiguration(
                commandEndpoint: coordinator.command, eventEndpoint: coordinator.events, serverPublicKey: serverKey, keys: keys))
        }
        while true {
            do {
                let probe = min(.seconds(2), deadline - ContinuousClock.now)
                _ = try following.request(.sessionIdentity, body: [String: String](), as: [String: String?].self, timeout: probe)
                guard let client = following.detach() else { throw CommandFailure(.internalError, message: "no connection after an answer") }
                return (client, following.current)
            } catch BusClientError.serverUnreachable where ContinuousClock.now < deadline {
                continue  // that coordinator may be dead: the next one is asked
            } catch {
                return try call { throw error }
            }
        }
    }

    /// A client of a relay node's media endpoint, where the server sent a viewer (`feed.open`'s redirect).
    func connect(toRelay redirect: FeedRedirect) throws -> BusClient {
        try connect(command: redirect.media, events: redirect.media, serverKey: redirect.serverKey)
    }

    /// A client with this agency's or user's key pair.
    private func connect(command: String, events: String, serverKey: String) throws -> BusClient {
        let keys = try clientKeys()
        do {
            return try BusClient(configuration: BusClientConfiguration(commandEndpoint: command, eventEndpoint: events, serverPublicKey: serverKey, keys: keys))
        } catch {
            throw CommandFailure(passing: error.code, message: error.description)
        }
    }

    /// This agency's or user's key pair, from the data folder.
    private func clientKeys() throws -> CurveKeyPair {
        let folder = DataFolder(path: data)
        let keys: CurveKeyPair
        do {
            keys = try CurveCertificate.read(user.map { folder.userCertificate($0, secret: true) } ?? folder.agencyCertificate(agency, secret: true))
        } catch {
            throw CommandFailure(passing: error.code, message: "\(error.message) (is '\(user ?? agency)' \(user == nil ? "an agency" : "a user") of this server?)")
        }
        guard keys.secretKey != nil else {
            throw CommandFailure(.keyMissing, message: "the certificate of \(user ?? agency) has no secret-key")
        }
        return keys
    }

    /// Runs a client call, turning bus errors into command failures.
    func call<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as BusClientError {
            if case .remote(let remote) = error {
                throw CommandFailure(passing: remote.code, message: remote.field.map { "\($0): \(remote.message)" } ?? remote.message)
            }
            let text = error.description
            let message = text.hasPrefix("\(error.code): ") ? String(text.dropFirst(error.code.count + 2)) : text
            throw CommandFailure(passing: error.code, message: message)
        }
    }

    /// Connects, sends one request and returns its decoded result.
    func request<Body: Encodable, Result: Decodable>(_ operation: ProtocolOperation, body: Body, as type: Result.Type) throws -> Result {
        let bus = try connect()
        defer { bus.close() }
        return try call { try bus.request(operation, body: body, as: type, timeout: requestTimeout) }
    }

    /// Prints a value as one JSON line in the bus encoding.
    func printJSON<T: Encodable>(_ value: T) throws {
        FileHandle.standardOutput.write(try BusProtocol.encoder.encode(value) + Data("\n".utf8))
    }
}

/// Runs a client command body and reports a failure the same way everywhere: `error: CODE:
/// message` on standard error, or with `json` one JSON object there (`{"error": {"code",
/// "message", "field", "problems"}}`), and exit status 1.
func reportingFailures(json: Bool = false, _ body: () throws -> Void) throws {
    do {
        try body()
    } catch {
        throw reported(error, json: json)
    }
}

/// The same, for a body that awaits.
func reportingFailures(json: Bool = false, _ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch {
        throw reported(error, json: json)
    }
}

/// A failure as `--json` prints it.
private struct ReportedFailure: Encodable {
    struct Body: Encodable {
        var code: String
        var message: String
        var field: String?
        /// Every problem of a file, each with its own code and field.
        var problems: [BusProtocol.ErrorBody]?
    }

    var error: Body
}

/// Prints a failure that has a code and turns it into exit status 1; any other error is
/// returned as it is.
private func reported(_ error: any Error, json: Bool) -> any Error {
    let failure: ReportedFailure.Body
    switch error {
    case let problems as RegistryProblems:
        failure = .init(
            code: GeoErrorCode.registryInvalid.rawValue, message: "\(problems.problems.count) problems in \(problems.file), nothing imported",
            problems: problems.problems.map { BusProtocol.ErrorBody(code: $0.code, message: $0.message, field: $0.field) })
    case let coded as any StableError:
        failure = .init(code: coded.code, message: coded.message, field: coded.field)
    default:
        return error
    }
    if json, let encoded = try? BusProtocol.encoder.encode(ReportedFailure(error: failure)) {
        FileHandle.standardError.write(encoded + Data("\n".utf8))
    } else {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    }
    return ExitCode(1)
}

/// A new file at `url`, open for writing: a command's output (`makingFolder`: its folder too, if need be).
func newOutputFile(_ url: URL, makingFolder: Bool = false) throws(CommandFailure) -> FileHandle {
    do {
        if makingFolder { try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true) }
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else { throw CocoaError(.fileWriteUnknown) }
        return try FileHandle(forWritingTo: url)
    } catch {
        throw CommandFailure(.outputUnwritable, message: "cannot write \(url.path): \(error.localizedDescription)")
    }
}
