internal import CZeroMQ
import Glibc

/// An error from libzmq, keeping the raw `errno` and the operation that failed.
public struct ZMQError: Error, Sendable, CustomStringConvertible, Equatable {
    public let code: Int32
    public let operation: String

    public var description: String { "\(operation): \(String(cString: zmq_strerror(code))) (errno \(code))" }

    package init(code: Int32, operation: String) {
        self.code = code
        self.operation = operation
    }

    /// The error for the call that just failed, read from `zmq_errno()`.
    package static func last(_ operation: String) -> ZMQError {
        ZMQError(code: zmq_errno(), operation: operation)
    }

    /// The context was terminated: the owning loop must close its sockets and exit.
    package var isTerminated: Bool { code == ETERM }
    /// Non-blocking call with nothing to do (EAGAIN).
    package var isWouldBlock: Bool { code == EAGAIN }
}

extension String {
    /// The text of a NUL-terminated C buffer that libzmq filled.
    package init(zeroTerminated buffer: [CChar]) {
        self.init(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
