import ErrorVocabulary
import Foundation

/// The envelope of every message on the bus, version 1 (see docs/protocol.md).
///
/// Requests and replies are one UTF-8 JSON frame each; events are two frames, the topic and
/// the JSON (a JSON array of events on a batched subscription, see ``EventBatch``). Member names are snake_case and times are ISO 8601 UTC.
public enum BusProtocol {
    public static let version = 1
    /// The largest message a network-facing socket accepts (`ZMQ_MAXMSGSIZE`): room for a
    /// march route of 5,000 vertices in a request.
    public static let maximumMessageSize = 1024 * 1024
    /// The longest correlation id a client may use.
    public static let maximumRequestIDLength = 64

    /// The heartbeat topic; every agency may subscribe to it.
    public static let heartbeatTopic = "heartbeat/"

    public static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    public static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()

    /// The header's keys need no conversion; a decoder without strategies reads it faster.
    private static let headerDecoder = JSONDecoder()

    /// The header every request carries.
    public struct RequestHeader: Sendable, Codable {
        public var v: Int
        public var id: String
        public var op: String
    }

    /// A request as a client sends it.
    public struct Request<Body: Encodable>: Encodable {
        public var v = BusProtocol.version
        public var id: String
        public var op: String
        public var body: Body
    }

    /// An error as it travels in a reply: a stable code, a message, the field at fault.
    ///
    /// A reply may carry any code (a newer server's too): `code` is the code as written. The
    /// codes are made from a vocabulary: the bus's own (``Code``), and the application's above it.
    public struct ErrorBody: StableError, Sendable, Codable, Equatable {
        /// The bus's own codes (the envelope, the text rule, load). Each is explained in `docs/protocol.md`.
        public enum Code: String, ErrorCode {
            case badFrames = "bad_frames"
            case badRequest = "bad_request"
            case credentialsRevoked = "credentials_revoked"
            case serverBusy = "server_busy"
            case textInvalid = "text_invalid"
            case unsupportedVersion = "unsupported_version"
        }

        public var code: String
        public var message: String
        public var field: String?
        /// With `not_leader`: where the cluster's leader is, when the coordinator that answered knows.
        public var leader: CoordinatorEndpoints?

        public init(_ code: Code, message: String, field: String? = nil) {
            self.init(code: code.rawValue, message: message, field: field)
        }

        /// An error whose code is already written (read from a reply, or another vocabulary's).
        public init(code: String, message: String, field: String? = nil) {
            self.code = code
            self.message = message
            self.field = field
        }

        public var description: String { field.map { "\(code): \($0): \(message)" } ?? "\(code): \(message)" }
    }

    /// Where a coordinator of a replicated cluster is reached: its command and event endpoints,
    /// and its embedded relay's media endpoint.
    public struct CoordinatorEndpoints: Sendable, Codable, Equatable, Hashable {
        public var command: String
        public var events: String
        public var media: String?

        public init(command: String, events: String, media: String? = nil) {
            self.command = command
            self.events = events
            self.media = media
        }
    }

    struct Reply<Result: Encodable>: Encodable {
        var v = BusProtocol.version
        var id: String?
        var ok: Bool
        var result: Result?
        var error: ErrorBody?
    }

    struct Event<Body: Encodable>: Encodable {
        var v = BusProtocol.version
        var channel: String
        var seq: Int64
        var type: String
        var at: Date
        var body: Body
    }

    struct Empty: Codable {}

    private struct BodyWrapper<Body: Decodable>: Decodable {
        var body: Body
    }

    /// Any JSON object, for a body whose contents another reader checks (see ``rawBody(of:)``).
    public struct AnyObjectBody: Decodable {
        public init(from decoder: any Decoder) throws {
            _ = try decoder.container(keyedBy: AnyKey.self)
        }

        private struct AnyKey: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }
    }

    /// The request's `body` member as JSON bytes, for a reader of its own format (a GeoJSON
    /// registry, say). Call ``decodeBody(_:from:)`` first: it checks the text.
    public static func rawBody(of payload: Data) throws(ErrorBody) -> Data {
        guard let request = try? JSONSerialization.jsonObject(with: payload) as? [String: Any], let body = request["body"] as? [String: Any],
              let data = try? JSONSerialization.data(withJSONObject: body)
        else { throw ErrorBody(.badRequest, message: "body must be a JSON object", field: "body") }
        return data
    }

    /// Reads a request's header, refusing anything that is not a well-formed version-1 request.
    public static func decodeHeader(_ payload: Data) throws(ErrorBody) -> RequestHeader {
        let header: RequestHeader
        do {
            if let members = EnvelopeReader.members(of: payload), case .integer(let v)? = members["v"]?.value,
               case .string(let id)? = members["id"]?.value, case .string(let op)? = members["op"]?.value {
                header = RequestHeader(v: v, id: id, op: op)
            } else {
                header = try headerDecoder.decode(RequestHeader.self, from: payload)
            }
        } catch let error as DecodingError {
            throw ErrorBody(.badRequest, message: "not a request envelope: \(describe(error))", field: field(of: error))
        } catch {
            throw ErrorBody(.badRequest, message: "not a request envelope: \(error)")
        }
        guard header.v == version else {
            throw ErrorBody(.unsupportedVersion, message: "this server speaks protocol version \(version)", field: "v")
        }
        guard !header.id.isEmpty, header.id.utf8.count <= maximumRequestIDLength else {
            throw ErrorBody(.badRequest, message: "id must be 1 to \(maximumRequestIDLength) bytes", field: "id")
        }
        return header
    }

    /// Decodes the request's `body` member as `Body`. Text with a control character (see
    /// ``RequestText``) anywhere in the body is refused with `text_invalid`.
    public static func decodeBody<Body: Decodable>(_ type: Body.Type, from payload: Data) throws(ErrorBody) -> Body {
        // Text is checked first: a lying string is refused whatever else is wrong with the body.
        if let (path, scalar) = RequestText.firstRefusedString(in: payload, under: "body") {
            throw ErrorBody(
                .textInvalid,
                message: "text may not hold control or bidirectional-override characters (found U+\(String(format: "%04X", scalar.value)))",
                field: path)
        }
        do {
            return try decoder.decode(BodyWrapper<Body>.self, from: payload).body
        } catch let error as DecodingError {
            // A value that decoded but is not valid (a latitude of 95) keeps its own code.
            if case .dataCorrupted(let context) = error, let coded = context.underlyingError as? any StableError {
                throw ErrorBody(code: coded.code, message: coded.message, field: field(of: error))
            }
            throw ErrorBody(.badRequest, message: describe(error), field: field(of: error))
        } catch {
            throw ErrorBody(.badRequest, message: "\(error)", field: "body")
        }
    }

    public static func successReply<Result: Encodable>(id: String, result: Result) -> Data {
        Envelope.object(["id": .string(id), "ok": .json(Data("true".utf8)), "result": .json(encode(result)), "v": .json(versionText)])
    }

    /// A request as a client sends it (``Request``, whose envelope is written without the coder).
    public static func request<Body: Encodable>(id: String, op: String, body: Body) throws -> Data {
        Envelope.object(["body": .json(try encoder.encode(body)), "id": .string(id), "op": .string(op), "v": .json(versionText)])
    }

    private static let versionText = Data("\(version)".utf8)

    public static func errorReply(id: String?, _ error: ErrorBody) -> Data {
        encode(Reply<Empty>(id: id, ok: false, result: nil, error: error))
    }

    public static func event<Body: Encodable>(channel: String, seq: Int64, type: String, at: Date = Date(), body: Body) -> Data {
        encode(Event(channel: channel, seq: seq, type: type, at: at, body: body))
    }

    private static func encode<T: Encodable>(_ value: T) -> Data {
        do {
            return try encoder.encode(value)
        } catch {
            // Only non-finite doubles fail to encode, and the models never hold them.
            preconditionFailure("bus message failed to encode: \(error)")
        }
    }

    static func field(of error: DecodingError) -> String? {
        let context: DecodingError.Context? = switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context): context
        case .keyNotFound(let key, let context): DecodingError.Context(codingPath: context.codingPath + [key], debugDescription: "")
        @unknown default: nil
        }
        guard let path = context?.codingPath, !path.isEmpty else { return nil }
        return path.map { key in key.intValue.map { "[\($0)]" } ?? ".\(snakeCase(key.stringValue))" }
            .joined().trimmingCharacters(in: CharacterSet(charactersIn: "."))
    }

    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, _): "missing member '\(snakeCase(key.stringValue))'"
        case .typeMismatch(let type, _): "wrong type, expected \(type)"
        case .valueNotFound(let type, _): "expected \(type), found null"
        case .dataCorrupted(let context): context.underlyingError.map { "invalid JSON: \($0.localizedDescription)" } ?? context.debugDescription
        @unknown default: "\(error)"
        }
    }

    private static func snakeCase(_ name: String) -> String {
        var result = ""
        for character in name {
            if character.isUppercase {
                result.append("_")
                result.append(contentsOf: character.lowercased())
            } else {
                result.append(character)
            }
        }
        return result
    }
}
