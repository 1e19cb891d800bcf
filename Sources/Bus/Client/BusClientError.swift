/// Why a client call failed, each with a stable code the CLI prints.
public enum BusClientError: Error, Sendable, CustomStringConvertible {
    /// Nothing answered in time: the server is not running, or not at that endpoint.
    case serverUnreachable(endpoint: String, seconds: Double)
    /// The server refused this client's CURVE key (unknown agency key, or wrong server key).
    case authenticationRefused(endpoint: String)
    /// The server answered with an error.
    case remote(BusProtocol.ErrorBody)
    /// The server's answer did not follow the protocol.
    case protocolViolation(String)
    case transport(ZMQError)

    public var code: String {
        switch self {
        case .serverUnreachable: "server_unreachable"
        case .authenticationRefused: "authentication_refused"
        case .remote(let body): body.code
        case .protocolViolation: "protocol_error"
        case .transport: "transport_error"
        }
    }

    public var description: String {
        switch self {
        case .serverUnreachable(let endpoint, let seconds):
            "server_unreachable: no answer from \(endpoint) within \(seconds) s; is `vigil serve` running with this data folder?"
        case .authenticationRefused(let endpoint):
            "authentication_refused: \(endpoint) refused this agency's key (is the key registered with this server?)"
        case .remote(let body): body.description
        case .protocolViolation(let detail): "protocol_error: \(detail)"
        case .transport(let error): "transport_error: \(error)"
        }
    }
}
