internal import CZeroMQ
import Foundation
import Glibc

/// The socket types Vigil uses.
package enum ZMQSocketType {
    case router, dealer, xpub, sub, rep, pair
    /// For the raw reference of `vigil bench bus` only.
    case pub

    package var raw: Int32 {
        switch self {
        case .router: ZMQ_ROUTER
        case .dealer: ZMQ_DEALER
        case .xpub: ZMQ_XPUB
        case .sub: ZMQ_SUB
        case .pub: ZMQ_PUB
        case .rep: ZMQ_REP
        case .pair: ZMQ_PAIR
        }
    }
}

/// One received frame, with the ZAP user id of the peer that sent it (set on authenticated connections).
package struct ZMQFrame {
    package var data: Data
    package var userID: String?
    /// The client's public key, a connection property the bus's ZAP handler sets (``peerKeyProperty``).
    package var peerKey: String?

    /// The name of the connection property that carries the client's key.
    package static let peerKeyProperty = "X-Key"
}

/// A libzmq socket, owned by exactly this object.
///
/// - Important: libzmq sockets are not thread-safe: a socket is used by one thread at a time,
///   with a full memory barrier (a lock) between threads. It is closed by ``close()`` on the
///   thread that uses it, or as a fallback in `deinit`. Linger is 0, so closing never blocks.
package final class ZMQSocket {
    private(set) var handle: UnsafeMutableRawPointer?
    /// A message buffer at a stable address, as `zmq_msg_recv` requires.
    private let message = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1)

    package init(context: ZMQContext, type: ZMQSocketType) throws(ZMQError) {
        guard let handle = zmq_socket(context.handle, type.raw) else { throw ZMQError.last("zmq_socket") }
        self.handle = handle
        try set(ZMQ_LINGER, Int32(0))
        // tcp:// endpoints may be IPv6 (`tcp://[::1]:7710`); IPv4 addresses work as before.
        try set(ZMQ_IPV6, Int32(1))
    }

    deinit {
        close()
        message.deallocate()
    }

    package func close() {
        if let handle { zmq_close(handle) }
        handle = nil
    }

    // MARK: Options

    package func set(_ option: Int32, _ value: Int32) throws(ZMQError) {
        var value = value
        guard zmq_setsockopt(handle, option, &value, MemoryLayout<Int32>.size) == 0 else { throw ZMQError.last("zmq_setsockopt(\(option))") }
    }

    package func set(_ option: Int32, _ value: Int64) throws(ZMQError) {
        var value = value
        guard zmq_setsockopt(handle, option, &value, MemoryLayout<Int64>.size) == 0 else { throw ZMQError.last("zmq_setsockopt(\(option))") }
    }

    package func set(_ option: Int32, _ value: String) throws(ZMQError) {
        let bytes = Array(value.utf8)
        guard zmq_setsockopt(handle, option, bytes, bytes.count) == 0 else { throw ZMQError.last("zmq_setsockopt(\(option))") }
    }

    package func set(_ option: Int32, bytes: Data) throws(ZMQError) {
        let status = bytes.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, $0.count) }
        guard status == 0 else { throw ZMQError.last("zmq_setsockopt(\(option))") }
    }

    /// Makes this socket a CURVE server with the given secret key (Z85).
    package func makeCurveServer(secretKey: String, domain: String) throws(ZMQError) {
        try set(ZMQ_ZAP_DOMAIN, domain)
        try set(ZMQ_CURVE_SERVER, Int32(1))
        try set(ZMQ_CURVE_SECRETKEY, secretKey)
    }

    /// Makes this socket a CURVE client of the server whose public key is given (all keys Z85).
    package func makeCurveClient(serverKey: String, publicKey: String, secretKey: String) throws(ZMQError) {
        try set(ZMQ_CURVE_SERVERKEY, serverKey)
        try set(ZMQ_CURVE_PUBLICKEY, publicKey)
        try set(ZMQ_CURVE_SECRETKEY, secretKey)
    }

    // MARK: Endpoints

    package func bind(_ endpoint: String) throws(ZMQError) {
        guard zmq_bind(handle, endpoint) == 0 else { throw ZMQError.last("zmq_bind(\(endpoint))") }
    }

    package func connect(_ endpoint: String) throws(ZMQError) {
        guard zmq_connect(handle, endpoint) == 0 else { throw ZMQError.last("zmq_connect(\(endpoint))") }
    }

    /// The endpoint actually bound, with the port the system chose for `:0` or `:*`.
    package func lastEndpoint() throws(ZMQError) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        var size = buffer.count
        guard zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, &buffer, &size) == 0 else { throw ZMQError.last("zmq_getsockopt(ZMQ_LAST_ENDPOINT)") }
        return String(zeroTerminated: buffer)
    }

    /// Asks libzmq to report the given events on a PAIR socket at `endpoint`.
    package func monitor(_ endpoint: String, events: Int32) throws(ZMQError) {
        guard zmq_socket_monitor(handle, endpoint, events) == 0 else { throw ZMQError.last("zmq_socket_monitor") }
    }

    // MARK: Messages

    /// Sends a multi-frame message. With `wait: false`, a full queue fails with EAGAIN.
    package func send(_ frames: [Data], wait: Bool = false) throws(ZMQError) {
        for (index, frame) in frames.enumerated() {
            try send(frame, wait: wait, more: index < frames.count - 1)
        }
    }

    /// Sends one frame (copied), retrying when a signal interrupts the call.
    private func send(_ frame: Data, wait: Bool, more: Bool) throws(ZMQError) {
        let flags: Int32 = (wait ? 0 : ZMQ_DONTWAIT) | (more ? ZMQ_SNDMORE : 0)
        while true {
            // Returns the byte count, or -1 with errno (EAGAIN when full, EINTR on a signal).
            let sent = frame.withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, flags) }
            if sent >= 0 { return }
            let error = ZMQError.last("zmq_send")
            if error.code != EINTR { throw error }
        }
    }

    /// Sends `frames` (copied, small) then `payload` without copying it: libzmq keeps a reference
    /// to the bytes until it has sent them to this peer, so one packet goes to every subscriber
    /// from the same memory. Fails with EAGAIN when the peer's queue is full.
    package func send(_ frames: [Data], sharing payload: Data) throws(ZMQError) {
        for frame in frames { try send(frame, wait: false, more: true) }
        let box = Unmanaged.passRetained(PayloadBox(payload))
        var message = zmq_msg_t()
        // The pointer stays valid: the box holds the immutable Data, and so its storage, until
        // libzmq calls the free function after the last send of the message.
        let base = payload.withUnsafeBytes { UnsafeMutableRawPointer(mutating: $0.baseAddress) }
        let initialised = zmq_msg_init_data(&message, base, payload.count, { _, hint in
            if let hint { Unmanaged<PayloadBox>.fromOpaque(hint).release() }
        }, box.toOpaque())
        guard initialised == 0 else {
            box.release()
            throw ZMQError.last("zmq_msg_init_data")
        }
        while true {
            if zmq_msg_send(&message, handle, ZMQ_DONTWAIT) >= 0 { return }
            let error = ZMQError.last("zmq_msg_send")
            if error.code == EINTR { continue }
            zmq_msg_close(&message)  // releases the box
            throw error
        }
    }

    /// Receives every frame of one message, or nil when none is waiting (`wait: false`).
    package func receive(wait: Bool = false) throws(ZMQError) -> [ZMQFrame]? {
        var frames: [ZMQFrame] = []
        while true {
            zmq_msg_init(message)
            defer { zmq_msg_close(message) }
            // Returns the size, or -1 with errno: EAGAIN with nothing waiting, EINTR on a signal.
            let size = zmq_msg_recv(message, handle, wait || !frames.isEmpty ? 0 : ZMQ_DONTWAIT)
            if size < 0 {
                let error = ZMQError.last("zmq_msg_recv")
                if error.code == EINTR { continue }
                if error.isWouldBlock && frames.isEmpty { return nil }
                throw error
            }
            let data = Data(bytes: zmq_msg_data(message), count: Int(size))
            // zmq_msg_gets returns NULL when the property is not set (unauthenticated peers).
            let userID = zmq_msg_gets(message, "User-Id").map { String(cString: $0) }
            let peerKey = userID == nil ? nil : zmq_msg_gets(message, ZMQFrame.peerKeyProperty).map { String(cString: $0) }
            frames.append(ZMQFrame(data: data, userID: userID, peerKey: peerKey))
            if zmq_msg_more(message) == 0 { return frames }
        }
    }
}

/// Waits until one of `sockets` is readable, for at most `timeout` milliseconds (-1: forever).
/// Returns the readable flags in the order of `sockets`.
package func zmqPoll(_ sockets: [ZMQSocket], timeoutMilliseconds: Int) throws(ZMQError) -> [Bool] {
    var items = sockets.map { zmq_pollitem_t(socket: $0.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0) }
    while true {
        // Returns the number of ready items, or -1 with errno (EINTR on a signal, ETERM on shutdown).
        let ready = zmq_poll(&items, Int32(items.count), timeoutMilliseconds)
        if ready >= 0 { break }
        let error = ZMQError.last("zmq_poll")
        if error.code == EINTR { continue }
        throw error
    }
    return items.map { $0.revents & Int16(ZMQ_POLLIN) != 0 }
}

/// Keeps a payload alive while libzmq sends it without a copy.
private final class PayloadBox {
    let data: Data

    init(_ data: Data) {
        self.data = data
    }
}
