import Foundation
import Glibc

/// A TCP socket bound to a free port on 127.0.0.1, listening when `listening`; the socket and
/// its port. The caller closes it.
public func loopbackSocket(listening: Bool) throws -> (socket: Int32, port: Int) {
    let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = loopbackAddress(port: 0)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(listener, $0, length) == 0 && (!listening || listen(listener, 16) == 0) && getsockname(listener, $0, &length) == 0
        }
    }
    guard bound else {
        close(listener)
        throw TestSetupFailure("no free loopback port: errno \(errno)")
    }
    return (listener, Int(UInt16(bigEndian: address.sin_port)))
}

/// 127.0.0.1:`port` as a socket address.
public func loopbackAddress(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    return address
}

/// A loopback TCP port free a moment ago, for a server a test starts on a port it names. It is
/// drawn at random below the kernel's ephemeral range: a port bound to 0 by another test running
/// meanwhile comes from that range, so it cannot take this one before the server binds it (as
/// once happened to a cluster test in CI, with a port the kernel had just handed out).
public func freeLoopbackPort() throws -> Int {
    let rangeFile = try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)
    let ephemeralStart = rangeFile?.split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) } ?? 32768
    if ephemeralStart > 12_000 {
        for _ in 0..<100 {
            let port = Int.random(in: 10_000..<ephemeralStart)
            if canBind(port: port) { return port }
        }
    }
    // No room below the range: the kernel's choice.
    let (socket, port) = try loopbackSocket(listening: false)
    close(socket)
    return port
}

/// Whether a server could bind 127.0.0.1:`port` now (with `SO_REUSEADDR`, as libzmq and most servers bind).
private func canBind(port: Int) -> Bool {
    let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(probe) }
    var reuse: Int32 = 1
    setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
    var address = loopbackAddress(port: port)
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(probe, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}
