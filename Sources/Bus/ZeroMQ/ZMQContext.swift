internal import CZeroMQ
import Glibc

/// A libzmq context: the owner of every socket made from it.
///
/// Shut down in two steps: ``shutdown()`` makes every blocking call on its sockets fail with
/// ETERM so their threads close them; ``terminate()`` then waits for those closes. Neither
/// runs in `deinit`, which must never block.
public final class ZMQContext: @unchecked Sendable {  // @unchecked: zmq contexts are thread-safe by design.
    package let handle: UnsafeMutableRawPointer

    /// - Parameters:
    ///   - maxSockets: how many sockets the context may hold (libzmq's default is 1,023).
    ///   - ioThreads: libzmq's I/O threads, which do the CURVE encryption (default 1).
    public init(maxSockets: Int32? = nil, ioThreads: Int32? = nil) throws(ZMQError) {
        guard let handle = zmq_ctx_new() else { throw ZMQError.last("zmq_ctx_new") }
        self.handle = handle
        if let maxSockets, zmq_ctx_set(handle, ZMQ_MAX_SOCKETS, maxSockets) != 0 { throw ZMQError.last("zmq_ctx_set(ZMQ_MAX_SOCKETS)") }
        if let ioThreads, zmq_ctx_set(handle, ZMQ_IO_THREADS, ioThreads) != 0 { throw ZMQError.last("zmq_ctx_set(ZMQ_IO_THREADS)") }
    }

    public func shutdown() {
        zmq_ctx_shutdown(handle)
    }

    /// Blocks until every socket of this context is closed.
    public func terminate() {
        // Returns -1 with EINTR when a signal interrupts it; try again.
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }
}
