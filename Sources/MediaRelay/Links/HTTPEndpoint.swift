import Bus
import Crypto
import Foundation
import CLinuxEvents
import Glibc

/// A small HTTP/1.1 server on a POSIX socket for the few GET routes Vigil serves: Prometheus
/// metrics, and the relay's MPEG-TS feeds, browsers' WebSocket streams and thumbnails behind
/// one-time links.
///
/// Hand-written rather than with an HTTP framework: the streams' sockets are handed to the
/// fan-out's own epoll thread, which writes every player's bytes without a copy per player, and
/// a framework's event loop would not let them go (the console, on Hummingbird, serves the
/// rest). Each request has
/// its own thread while it is read and answered, up to `maximumRequests` at once (a slow client
/// holds up no other; a request that finds them all busy waits a second for one, then gets
/// 503); its head is read whole, up to 8 KiB within 2 seconds (else `431`, `408`); GET and HEAD are served (HEAD with the
/// head GET would have, and no body: a stream is not started). A stream's connection is handed,
/// after its head, to whoever writes it (the relay's ``FanOut``), and holds no thread of the
/// endpoint; so does a WebSocket's, after the handshake (RFC 6455 §4.2.2) the route asked for;
/// every other answer closes the connection.
public final class HTTPEndpoint: @unchecked Sendable {  // @unchecked: the listener is only used by its thread, then closed by stop().
    public enum Response: Sendable {
        case complete(status: String, type: String, body: [UInt8])
        /// A body of unknown length: after the head, the connection is given to `take`, which
        /// owns it from then on (and closes it).
        case stream(type: String, take: @Sendable (Int32) -> Void)
        /// The WebSocket a request asked to open (``Request/webSocketKey``): after the
        /// handshake, the connection is given to `take`, as for a stream.
        case webSocket(take: @Sendable (Int32) -> Void)

        public static func error(_ status: String, _ message: String) -> Response {
            .complete(status: status, type: "text/plain; charset=utf-8", body: Array((message + "\n").utf8))
        }
    }

    /// What the routes see of a request.
    public struct Request: Sendable {
        /// The path, with its query string.
        public let path: String
        let headOnly: Bool
        /// Header names in lower case; a repeated header keeps its last value.
        public let headers: [String: String]

        /// The key of a request to open a WebSocket (version 13), else nil.
        public var webSocketKey: String? {
            guard headers["upgrade"]?.lowercased() == "websocket", headers["sec-websocket-version"] == "13",
                let key = headers["sec-websocket-key"], !key.isEmpty
            else { return nil }
            return key
        }
    }

    struct SetupError: Error, CustomStringConvertible {
        let description: String
    }

    /// Requests read and answered at once (streams handed off do not count).
    static let maximumRequests = 64

    private let listener: Int32
    private let name: String
    private let route: @Sendable (Request) -> Response
    private let stopped = DispatchSemaphore(value: 0)
    private let requests = DispatchSemaphore(value: HTTPEndpoint.maximumRequests)
    /// The port actually bound.
    public let port: Int

    /// - Parameters:
    ///   - name: what the endpoint is for, in errors and its thread's name.
    ///   - route: the answer to a `GET` request.
    public init(host: HostAddress, port: Int, name: String, route: @escaping @Sendable (Request) -> Response) throws {
        self.name = name
        self.route = route
        let family = host.isIPv6 ? AF_INET6 : AF_INET
        let listener = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw SetupError(description: "socket: \(String(cString: strerror(errno)))") }
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        let bound = host.withSocketAddress(port: port) { bind(listener, $0, $1) }
        // A burst of players (a video wall, a room of viewers as an incident opens) must not find
        // the queue of connections full: a refused SYN is retried after a second, then three.
        guard bound == 0, listen(listener, SOMAXCONN) == 0 else {
            let reason = String(cString: strerror(errno))
            close(listener)
            throw SetupError(description: "cannot listen on \(host.bracketed):\(port) for \(name): \(reason)")
        }
        var actual = sockaddr_storage()
        var actualLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &actualLength) }
        }
        self.listener = listener
        // sin_port and sin6_port both follow the family field.
        self.port = withUnsafeBytes(of: &actual) { raw in
            Int(UInt16(bigEndian: raw.load(fromByteOffset: MemoryLayout<sa_family_t>.size, as: UInt16.self)))
        }
    }

    public func start() {
        let thread = Thread { [self] in
            while true {
                let connection = accept(listener, nil, nil)
                if connection < 0 {
                    if errno == EINTR || errno == ECONNABORTED { continue }
                    break  // the listener was shut down
                }
                // Many players may open their links at once: wait a moment for a free slot.
                guard requests.wait(timeout: .now() + 1) == .success else {
                    _ = Self.write(Array("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8), to: connection)
                    close(connection)
                    continue
                }
                let handler = Thread { [self] in
                    if !serve(connection) { close(connection) }
                    requests.signal()
                }
                handler.name = "vigil.http.connection"
                handler.start()
            }
            stopped.signal()
        }
        thread.name = "vigil.http.\(name)"
        thread.start()
    }

    public func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        _ = stopped.wait(timeout: .now() + 2)
    }

    /// Answers one connection; whether it was handed off (else the caller closes it).
    private func serve(_ connection: Int32) -> Bool {
        // Answers are written within 2 s too (the head's deadline is readRequest's).
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let response: Response
        let headOnly: Bool
        var webSocketKey: String?
        switch readRequest(connection) {
        case .success(let request): (response, headOnly, webSocketKey) = (route(request), request.headOnly, request.webSocketKey)
        case .failure(let error): (response, headOnly) = (error.response, false)
        }
        switch response {
        case .complete(let status, let type, let body):
            let head = "HTTP/1.1 \(status)\r\nContent-Type: \(type)\r\nContent-Length: \(body.count)\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
            _ = Self.write(Array(head.utf8) + (headOnly ? [] : body), to: connection)
        case .stream(let type, let take):
            // Neither length nor chunks: the body ends when the connection closes (RFC 9112 §6.3),
            // which every player and ffmpeg accept for a live stream.
            let head = "HTTP/1.1 200 OK\r\nContent-Type: \(type)\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
            if Self.write(Array(head.utf8), to: connection), !headOnly {
                take(connection)
                return true
            }
        case .webSocket(let take):
            guard let webSocketKey, !headOnly else {
                let body = "this address is a WebSocket: open it with a WebSocket client (RFC 6455, version 13)\n"
                let head = "HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
                _ = Self.write(Array((head + body).utf8), to: connection)
                return false
            }
            let head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: \(Self.webSocketAccept(webSocketKey))\r\n\r\n"
            if Self.write(Array(head.utf8), to: connection) {
                take(connection)
                return true
            }
        }
        return false
    }

    private struct RequestError: Error {
        let response: Response
    }

    /// The answer a WebSocket handshake expects for `key`.
    static func webSocketAccept(_ key: String) -> String {
        Data(Insecure.SHA1.hash(data: Data((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))).base64EncodedString()
    }

    /// The most a request's head (its request line and header fields) may take.
    static let maximumHeadBytes = 8192
    /// How long a request's whole head may take to arrive.
    static let headTimeoutMilliseconds = 2_000

    /// A `GET` or `HEAD` request, or the error answer. Only a complete head is read: one that
    /// does not end (with its blank line) within 8 KiB is refused with `431`, within two
    /// seconds with `408`; the deadline is for the whole head, so a client that trickles bytes
    /// holds a slot no longer than one that sends nothing.
    private func readRequest(_ connection: Int32) -> Result<Request, RequestError> {
        var received = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 1024)
        var headLength: Int?
        var timedOut = false
        let deadline = ContinuousClock.now + .milliseconds(Self.headTimeoutMilliseconds)
        while headLength == nil, received.count < Self.maximumHeadBytes {
            let left = Int32(max(0, (deadline - ContinuousClock.now) / .milliseconds(1)))
            var ready = pollfd(fd: connection, events: Int16(POLLIN), revents: 0)
            let polled = poll(&ready, 1, left)
            if polled < 0, errno == EINTR { continue }
            guard polled > 0 else {
                timedOut = polled == 0
                break
            }
            let count = read(connection, &chunk, min(chunk.count, Self.maximumHeadBytes - received.count))
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            let searchFrom = max(0, received.count - 3)
            received += chunk[0..<count]
            headLength = Self.headLength(of: received, searchingFrom: searchFrom)
        }
        guard let headLength else {
            if received.count >= Self.maximumHeadBytes {
                return .failure(RequestError(response: .error("431 Request Header Fields Too Large", "a request's head is at most \(Self.maximumHeadBytes) bytes")))
            }
            if timedOut {
                return .failure(RequestError(response: .error("408 Request Timeout", "the request's head did not end within \(Self.headTimeoutMilliseconds) ms")))
            }
            return .failure(RequestError(response: .error("400 Bad Request", "the request ended before its head did (a blank line)")))
        }
        // Lines end with CRLF; a bare LF is accepted too (RFC 9112 §2.2). Split as bytes: in a
        // Swift string CRLF is one character, which a split on LF would not see.
        let lines = received[..<headLength].split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            .map { String(decoding: $0.last == UInt8(ascii: "\r") ? $0.dropLast() : $0, as: UTF8.self) }
        let parts = (lines.first ?? "").split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[2] == "HTTP/1.1" || parts[2] == "HTTP/1.0", parts[1].hasPrefix("/") else {
            return .failure(RequestError(response: .error("400 Bad Request", "not an HTTP/1.1 request line (METHOD /path HTTP/1.1)")))
        }
        guard parts[0] == "GET" || parts[0] == "HEAD" else {
            return .failure(RequestError(response: .error("405 Method Not Allowed", "only GET and HEAD are served here")))
        }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() where !line.isEmpty {
            // A field name is a token: no whitespace before its colon (RFC 9112 §5.1).
            guard let colon = line.firstIndex(of: ":"), colon > line.startIndex, !line[..<colon].contains(where: \.isWhitespace) else {
                return .failure(RequestError(response: .error("400 Bad Request", "a header field is not NAME: VALUE")))
            }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return .success(Request(path: String(parts[1]), headOnly: parts[0] == "HEAD", headers: headers))
    }

    /// The length of the head in `bytes` up to and with its blank line (CRLF CRLF, or LF LF,
    /// or LF CRLF), looking from `start`; nil when it has not ended yet.
    static func headLength(of bytes: [UInt8], searchingFrom start: Int) -> Int? {
        let newline = UInt8(ascii: "\n"), carriageReturn = UInt8(ascii: "\r")
        var index = start
        while index < bytes.count {
            if bytes[index] == newline {
                if index + 1 < bytes.count, bytes[index + 1] == newline { return index + 2 }
                if index + 2 < bytes.count, bytes[index + 1] == carriageReturn, bytes[index + 2] == newline { return index + 3 }
            }
            index += 1
        }
        return nil
    }

    /// Writes all of `bytes`; false when the peer is gone (no SIGPIPE: `MSG_NOSIGNAL`).
    static func write(_ bytes: [UInt8], to connection: Int32) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let written = bytes[sent...].withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written < 0, errno == EINTR { continue }
            guard written > 0 else { return false }
            sent += written
        }
        return true
    }
}
