import Foundation
import MediaRelay
import ServiceLifecycle
import Synchronization

/// The embedded relay's life: its media requests and its once-a-second supervision, from
/// start until graceful shutdown (which comes after the requests' service has stopped the bus),
/// or until the group is cancelled (a service failed). Stopping joins the relay's threads, so it
/// happens off the cooperative pool.
struct RelayService: Service {
    let relay: Relay

    func run() async {
        relay.start()
        let (stopped, stoppedSink) = AsyncStream.makeStream(of: Void.self)
        let stopping = StopOnce()
        let stop: @Sendable () -> Void = {
            guard stopping.first() else { return }
            DispatchQueue.global().async {
                relay.stop()
                stoppedSink.finish()
            }
        }
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await withDiscardingTaskGroup { group in
                    group.addTask { await relay.serveRequests() }
                    group.addTask { await relay.supervise() }
                }
            } onGracefulShutdown: {
                stop()
            }
        } onCancel: {
            stop()
        }
        // Waits for the stop even when cancelled (the iteration would end at once): its threads
        // and sockets are gone when this returns.
        await Task.detached { for await _ in stopped {} }.value
    }
}

/// True the first time it is asked, false after: a stop that may be asked twice (a graceful
/// shutdown, then a cancellation) runs once.
private final class StopOnce: Sendable {
    private let asked = Atomic<Bool>(false)

    func first() -> Bool {
        !asked.exchange(true, ordering: .acquiringAndReleasing)
    }
}
