import Foundation
import MediaRelay
import ServiceLifecycle

/// The embedded relay's life: its media requests and its once-a-second supervision, from
/// start until graceful shutdown (which comes after the requests' service has stopped the bus).
/// Stopping joins the relay's threads, so it happens off the cooperative pool.
struct RelayService: Service {
    let relay: Relay

    func run() async {
        relay.start()
        let (stopped, stoppedSink) = AsyncStream.makeStream(of: Void.self)
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { await relay.serveRequests() }
                group.addTask { await relay.supervise() }
            }
        } onGracefulShutdown: {
            DispatchQueue.global().async {
                relay.stop()
                stoppedSink.finish()
            }
        }
        for await _ in stopped {}
    }
}
