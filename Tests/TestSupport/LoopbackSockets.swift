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

/// A loopback TCP port free a moment ago (bound, then closed): for a server a test starts.
public func freeLoopbackPort() throws -> Int {
    let (socket, port) = try loopbackSocket(listening: false)
    close(socket)
    return port
}
