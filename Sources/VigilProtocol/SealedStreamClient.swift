import Bus
import Foundation
import Glibc
import Synchronization

/// A viewer's end of a sealed view: reads the sealed stream at its address (`GET …/sealed`) and
/// opens each frame with the content key it names. Keys come from the reply to `feed.open` and
/// from `content.key` messages on the viewer's CURVE connection (``add(_:)``); a frame sealed
/// with a key not yet here waits for it, `keyWait` at most, and is then counted as lost.
public final class SealedStreamClient: Sendable {
    public enum Failure: Error, CustomStringConvertible {
        case address(String)
        case connection(String)
        case refused(String)

        public var description: String {
            switch self {
            case .address(let text), .connection(let text), .refused(let text): text
            }
        }
    }

    /// What was read so far.
    public struct Statistics: Sendable, Equatable {
        public var frames = 0
        /// Frames whose key never came in time.
        public var lost = 0
    }

    private let socket: Int32
    private let keys: Mutex<[UInt32: ContentKey]>
    private let counts = Mutex(Statistics())
    private let keyWait: Duration

    /// Connects to `url` (`http://ADDRESS:PORT/PATH`; an IP address, names are not resolved) and
    /// asks for the stream; throws unless the relay answers `200` with a sealed stream.
    public init(url: String, key: ContentKey, keyWait: Duration = .seconds(2), timeout: Duration = .seconds(10)) throws(Failure) {
        guard let parsed = URL(string: url), parsed.scheme == "http", let host = parsed.host(percentEncoded: false), let port = parsed.port,
            let address = HostAddress(host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")))
        else { throw .address("not an http://ADDRESS:PORT/… address: \(url)") }
        socket = try Self.connect(to: address, port: port, timeout: timeout)
        keys = Mutex([key.id: key])
        self.keyWait = keyWait
        let request = "GET \(parsed.path) HTTP/1.1\r\nHost: \(address.bracketed):\(port)\r\nConnection: close\r\n\r\n"
        do throws(Failure) {
            guard Array(request.utf8).withUnsafeBytes({ Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.utf8.count else {
                throw .connection("the request could not be sent: \(String(cString: strerror(errno)))")
            }
            try Self.readHead(socket)
        } catch {
            close(socket)
            throw error
        }
    }

    deinit {
        close(socket)
    }

    /// A key a `content.key` message brought.
    public func add(_ key: ContentKey) {
        keys.withLock { $0[key.id] = key }
    }

    public var statistics: Statistics { counts.withLock { $0 } }

    /// Reads frames until the relay closes the stream, `stop` is set, or a frame is not
    /// authentic (thrown: the stream is not the relay's); hands each frame's MPEG-TS to `write`.
    public func receive(stop: borrowing Atomic<Bool>, write: ([UInt8]) throws -> Void) throws {
        var reader = SealedFrame.Reader()
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while !stop.load(ordering: .relaxed) {
            while let frame = try reader.next() {
                guard let opened = try open(frame, stop: stop) else { continue }
                try write(opened.transportStream)
                counts.withLock { $0.frames += 1 }
            }
            let count = read(socket, &buffer, buffer.count)
            if count < 0, errno == EAGAIN || errno == EINTR { continue }  // the receive timeout: look at `stop` again
            guard count > 0 else { return }
            reader.append(buffer[0..<count])
        }
    }

    /// Opens a frame, waiting a little for a key that may still be on its way; nil if it never came.
    private func open(_ frame: [UInt8], stop: borrowing Atomic<Bool>) throws(SealedFrame.Failure) -> SealedFrame.Opened? {
        let deadline = ContinuousClock.now + keyWait
        while true {
            do {
                return try SealedFrame.open(frame, keys: keys.withLock { $0 })
            } catch .unknownKey {
                guard ContinuousClock.now < deadline, !stop.load(ordering: .relaxed) else {
                    counts.withLock { $0.lost += 1 }
                    return nil
                }
                Thread.sleep(forTimeInterval: 0.005)
            }
        }
    }

    // MARK: The connection

    /// Reads the response's head (a byte at a time: nothing of the first frame is taken) and checks it.
    private static func readHead(_ socket: Int32) throws(Failure) {
        var head = [UInt8]()
        var byte = [UInt8](repeating: 0, count: 4096)
        while !(head.count >= 4 && head.suffix(4) == Array("\r\n\r\n".utf8)) {
            guard head.count < 16_384 else { throw .refused("the relay's answer has no end of head") }
            let count = read(socket, &byte, 1)
            guard count > 0 else { throw .refused("the relay closed the connection before answering") }
            head.append(byte[0])
        }
        let lines = String(decoding: head, as: UTF8.self).split(separator: "\r\n")
        let status = lines.first.map(String.init) ?? ""
        guard status.hasSuffix(" 200 OK") else { throw .refused("the relay answered \(status)") }
        guard lines.contains(where: { $0.lowercased() == "content-type: \(SealedFrame.mediaType)" }) else {
            throw .refused("the relay's answer is not a sealed stream")
        }
    }

    private static func connect(to address: HostAddress, port: Int, timeout: Duration) throws(Failure) -> Int32 {
        let family = address.isIPv6 ? AF_INET6 : AF_INET
        let socket = Glibc.socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socket >= 0 else { throw .connection("socket: \(String(cString: strerror(errno)))") }
        var wait = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        // Reads wake every second to look at `stop`.
        var tick = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &tick, socklen_t(MemoryLayout<timeval>.size))
        guard address.withSocketAddress(port: port, { Glibc.connect(socket, $0, $1) }) == 0 else {
            let reason = String(cString: strerror(errno))
            close(socket)
            throw .connection("the relay's sealed stream at \(address.bracketed):\(port) could not be reached: \(reason)")
        }
        return socket
    }
}
