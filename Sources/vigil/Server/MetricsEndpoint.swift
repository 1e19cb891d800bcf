import Foundation
import Glibc
import Prometheus

/// Serves `GET /metrics` in the Prometheus text format over plain HTTP/1.x, one short
/// connection at a time on its own thread.
///
/// Hand-written on a POSIX socket rather than with an HTTP framework: a scrape endpoint needs
/// one route, and Hummingbird would add minutes to every build on this project's machines.
/// Requests are read up to 8 KiB with a 2-second timeout; anything else gets 404 or 400.
final class MetricsEndpoint: @unchecked Sendable {  // @unchecked: the listener is only used by its thread, then closed by stop().
    private let registry: PrometheusCollectorRegistry
    private let listener: Int32
    private let stopped = DispatchSemaphore(value: 0)
    /// The port actually bound.
    let port: Int

    struct SetupError: Error, CustomStringConvertible {
        let description: String
    }

    init(host: String, port: Int, registry: PrometheusCollectorRegistry) throws {
        self.registry = registry
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw SetupError(description: "socket: \(String(cString: strerror(errno)))") }
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            close(listener)
            throw SetupError(description: "--host \(host) is not an IPv4 address")
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 16) == 0 else {
            let reason = String(cString: strerror(errno))
            close(listener)
            throw SetupError(description: "cannot listen on \(host):\(port) for metrics: \(reason)")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        self.listener = listener
        self.port = Int(UInt16(bigEndian: actual.sin_port))
    }

    func start() {
        let thread = Thread { [self] in
            while true {
                let connection = accept(listener, nil, nil)
                if connection < 0 {
                    if errno == EINTR { continue }
                    break  // the listener was shut down
                }
                serve(connection)
                close(connection)
            }
            stopped.signal()
        }
        thread.name = "vigil.metrics"
        thread.start()
    }

    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        _ = stopped.wait(timeout: .now() + 2)
    }

    private func serve(_ connection: Int32) {
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 1024)
        while request.count < 8192 {
            let count = read(connection, &chunk, chunk.count)
            guard count > 0 else { break }
            request += chunk[0..<count]
            if request.count >= 4, request.suffix(4) == Array("\r\n\r\n".utf8) { break }
        }
        let line = String(decoding: request.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        let parts = line.split(separator: " ")
        let response: (status: String, type: String, body: [UInt8])
        if parts.count == 3, parts[2].hasPrefix("HTTP/1.") {
            if parts[0] == "GET", parts[1] == "/metrics" || parts[1].hasPrefix("/metrics?") {
                response = ("200 OK", "text/plain; version=0.0.4; charset=utf-8", registry.emitToBuffer())
            } else {
                response = ("404 Not Found", "text/plain", Array("only GET /metrics is served here\n".utf8))
            }
        } else {
            response = ("400 Bad Request", "text/plain", Array("not an HTTP request\n".utf8))
        }
        let head = "HTTP/1.1 \(response.status)\r\nContent-Type: \(response.type)\r\nContent-Length: \(response.body.count)\r\nConnection: close\r\n\r\n"
        let bytes = Array(head.utf8) + response.body
        var sent = 0
        while sent < bytes.count {
            let written = bytes[sent...].withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
            guard written > 0 else { return }
            sent += written
        }
    }
}
