import Glibc

/// A host given as an IP address (IPv4 `127.0.0.1` or IPv6 `::1`; names are not resolved, so a
/// server binds exactly where it is told), written into endpoints and URLs the way each needs.
public struct HostAddress: Sendable, Equatable, CustomStringConvertible {
    /// The address as given.
    public let literal: String
    public let isIPv6: Bool
    /// Whether it is the unspecified address (0.0.0.0 or ::): bound, every address of the host;
    /// given to a peer, none.
    public let isUnspecified: Bool

    /// Nil when `literal` is neither an IPv4 nor an IPv6 address.
    public init?(_ literal: String) {
        var ipv4 = in_addr()
        var ipv6 = in6_addr()
        if inet_pton(AF_INET, literal, &ipv4) == 1 {
            isIPv6 = false
            isUnspecified = ipv4.s_addr == 0
        } else if inet_pton(AF_INET6, literal, &ipv6) == 1 {
            isIPv6 = true
            isUnspecified = withUnsafeBytes(of: &ipv6) { $0.allSatisfy { $0 == 0 } }
        } else {
            return nil
        }
        self.literal = literal
    }

    /// The host part of an endpoint or URL: IPv6 in brackets (RFC 3986 §3.2.2).
    public var bracketed: String { isIPv6 ? "[\(literal)]" : literal }

    /// `tcp://HOST:PORT` for libzmq.
    public func tcpEndpoint(port: Int) -> String { "tcp://\(bracketed):\(port)" }

    /// `http://HOST:PORT`.
    public func httpBase(port: Int) -> String { "http://\(bracketed):\(port)" }

    public var description: String { literal }

    /// Whether it is a loopback address (127.0.0.0/8 or ::1): reachable from this host only.
    public var isLoopback: Bool {
        isIPv6 ? literal == "::1" || literal == "0:0:0:0:0:0:0:1" : literal.hasPrefix("127.")
    }

    /// Calls `body` with this address and `port` as a socket address (for `bind` or `connect`).
    public func withSocketAddress<Result>(port: Int, _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> Result) rethrows -> Result {
        // Room for either family's address; the port is at the same offset in both.
        var address = sockaddr_storage()
        let length: socklen_t
        if isIPv6 {
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            withUnsafeMutableBytes(of: &address) { raw in
                let ipv6 = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in6.self)
                ipv6.pointee.sin6_family = sa_family_t(AF_INET6)
                ipv6.pointee.sin6_port = in_port_t(UInt16(port).bigEndian)
                _ = inet_pton(AF_INET6, literal, &ipv6.pointee.sin6_addr)
            }
        } else {
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
            withUnsafeMutableBytes(of: &address) { raw in
                let ipv4 = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in.self)
                ipv4.pointee.sin_family = sa_family_t(AF_INET)
                ipv4.pointee.sin_port = in_port_t(UInt16(port).bigEndian)
                _ = inet_pton(AF_INET, literal, &ipv4.pointee.sin_addr)
            }
        }
        return try withUnsafePointer(to: &address) { try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, length) } }
    }
}
