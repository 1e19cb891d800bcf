import Bus
import Foundation
import ServiceLifecycle

/// The bus's requests: changes pass the serial gate one at a time, in the order they came (the
/// expiry sweep and registry reloads pass it too, so a channel's events are published in
/// sequence order); requests that change nothing but the audit log (listings, snapshots, the
/// audit log's reads and checks) are answered meanwhile by a few workers beside it. Graceful
/// shutdown signs a last audit checkpoint, then stops the bus, which ends the requests.
public struct RequestService: Service {
    let bus: BusServer
    let dispatcher: CommandDispatcher
    let checkpoints: AuditCheckpoints
    /// The gate every change of the server passes, one at a time.
    let changes: SerialGate

    /// Requests that only read are answered by this many workers beside the serial gate.
    static let readWorkers = 4

    public func run() async throws {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                let (changeRequests, changeSink) = AsyncStream.makeStream(of: CommandDispatcher.Routed.self)
                let (readRequests, readSink) = AsyncStream.makeStream(of: CommandDispatcher.Routed.self)
                group.addTask {
                    for await request in changeRequests { await changes.serially { await dispatcher.handle(request) } }
                }
                for _ in 0..<Self.readWorkers {
                    group.addTask {
                        for await request in readRequests { await dispatcher.handle(request) }
                    }
                }
                // Routing reads only the header: it runs on the bus thread that received the
                // request (``BusExecutor``), so a request is handed to another thread once, to its worker.
                await withTaskExecutorPreference(bus.executor) {
                    for await request in bus.requests {
                        let routed = CommandDispatcher.Routed(request)
                        if routed.isReadOnly { readSink.yield(routed) } else { changeSink.yield(routed) }
                    }
                }
                changeSink.finish()
                readSink.finish()
            }
        } onGracefulShutdown: {
            // The last checkpoint covers everything up to the stop, and goes out before the bus
            // closes; the bus's stop joins its thread, so it waits off the cooperative pool.
            Task {
                await checkpoints.signIfGrown()
                DispatchQueue.global().async { bus.stop() }
            }
        }
    }

    public init(bus: BusServer, dispatcher: CommandDispatcher, checkpoints: AuditCheckpoints, changes: SerialGate) {
        self.bus = bus
        self.dispatcher = dispatcher
        self.checkpoints = checkpoints
        self.changes = changes
    }
}
