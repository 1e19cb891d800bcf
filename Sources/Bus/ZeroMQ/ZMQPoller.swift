internal import CZeroMQ
import Glibc

/// Waits on several sockets with one `poll(2)` on their file descriptors (`ZMQ_FD`), and asks
/// a socket for its events (`ZMQ_EVENTS`) only when its descriptor fired or it was used since
/// it was last asked.
///
/// `zmq_poll` asks every socket for its events before it sleeps and again after, and each ask
/// costs libzmq two system calls (a `getpid` for its fork check, and a `poll` of the socket's
/// mailbox): over the bus thread's six or more sockets, that was a fifth of the thread's time
/// per request. Here an idle socket costs nothing but its place in the one `poll`.
///
/// libzmq's descriptor signals commands for the socket, not messages, and a send or receive on
/// the socket may consume a signal, after which the socket can hold messages without its
/// descriptor saying so. So whoever sends or receives on a socket says so (``used(_:)``), and
/// the socket is asked again before the poller sleeps.
package final class ZMQPoller {
    private let sockets: [ZMQSocket]
    private var descriptors: [pollfd]
    /// The sockets to ask before sleeping.
    private var toAsk: [Bool]

    package init(_ sockets: [ZMQSocket]) throws(ZMQError) {
        self.sockets = sockets
        descriptors = []
        for socket in sockets {
            descriptors.append(pollfd(fd: try socket.commandDescriptor, events: Int16(POLLIN), revents: 0))
        }
        toAsk = Array(repeating: true, count: sockets.count)
    }

    /// Marks `socket` as sent or received on: it is asked for its events before the next sleep.
    package func used(_ socket: ZMQSocket) {
        if let index = sockets.firstIndex(where: { $0 === socket }) { toAsk[index] = true }
    }

    /// Whether any socket's descriptor is ready now (it has commands waiting: a message may
    /// have come), without waiting and without asking the sockets.
    package func anyDescriptorReady() -> Bool {
        poll(&descriptors, nfds_t(descriptors.count), 0) > 0
    }

    /// Which sockets have a message to read, waiting at most `timeoutMilliseconds` (-1: no
    /// limit) when none has. A descriptor that fires for commands only returns with none.
    package func wait(timeoutMilliseconds: Int) throws(ZMQError) -> [Bool] {
        var readable = [Bool](repeating: false, count: sockets.count)
        var any = false
        for index in sockets.indices where toAsk[index] {
            toAsk[index] = false
            if try sockets[index].hasMessage {
                readable[index] = true
                any = true
            }
        }
        if any { return readable }
        while true {
            let count = poll(&descriptors, nfds_t(descriptors.count), Int32(clamping: timeoutMilliseconds))
            if count >= 0 { break }
            if errno == EINTR { continue }
            throw ZMQError.last("poll")
        }
        for index in descriptors.indices where descriptors[index].revents != 0 {
            if try sockets[index].hasMessage { readable[index] = true }
        }
        return readable
    }
}

extension ZMQSocket {
    /// The descriptor (`ZMQ_FD`) that becomes readable when the socket has commands to process,
    /// a message among them; see ``ZMQPoller`` for what it does and does not say.
    package var commandDescriptor: Int32 {
        get throws(ZMQError) {
            var descriptor: Int32 = -1
            var size = MemoryLayout<Int32>.size
            guard zmq_getsockopt(handle, ZMQ_FD, &descriptor, &size) == 0 else { throw ZMQError.last("zmq_getsockopt(ZMQ_FD)") }
            return descriptor
        }
    }

    /// Whether a message waits to be read (`ZMQ_EVENTS` has `ZMQ_POLLIN`); asking processes the
    /// socket's pending commands.
    package var hasMessage: Bool {
        get throws(ZMQError) {
            var events: Int32 = 0
            var size = MemoryLayout<Int32>.size
            guard zmq_getsockopt(handle, ZMQ_EVENTS, &events, &size) == 0 else { throw ZMQError.last("zmq_getsockopt(ZMQ_EVENTS)") }
            return events & Int32(ZMQ_POLLIN) != 0
        }
    }
}
