import Foundation
import Synchronization

/// The bus thread as a task executor: jobs enqueued here run on the bus thread, between its
/// polls. A task that prefers it (`Task(executorPreference:)`) takes requests from
/// ``BusServer/requests`` and answers them on the very thread that received them, with no
/// hand-off to another thread either way (the reply is sent in the same turn of the loop).
///
/// Only code that is quick and never blocks belongs here: while a job runs, the bus sends and
/// receives nothing. Actor-isolated code still runs on its actor, and storage waits on its own
/// queues, so a handler that awaits them leaves the bus thread meanwhile. Once the bus has
/// stopped, jobs go to the global concurrent executor, so no task is ever stranded.
public final class BusExecutor: TaskExecutor, @unchecked Sendable {  // @unchecked: state is in a Mutex.
    private struct State {
        var jobs: [UnownedJob] = []
        var stopped = false
    }

    private let state = Mutex(State())
    /// Whether jobs wait, read without the lock by the bus thread while it watches its queues.
    private let pending = Atomic<Bool>(false)
    /// The bus thread, which needs no wake-up for the jobs it enqueues itself: it runs them
    /// before it polls again.
    private let busThread = Atomic<UInt>(0)
    /// Wakes the bus thread when it may be asleep in `poll`; set once by the server.
    nonisolated(unsafe) var wakeBusThread: @Sendable () -> Void = {}

    init() {}

    /// Whether jobs are waiting to run.
    var hasPendingJobs: Bool { pending.load(ordering: .acquiring) }

    /// Marks the calling thread as the bus thread; called once, when the thread starts.
    func runsOnCurrentThread() {
        busThread.store(UInt(pthread_self()), ordering: .releasing)
    }

    /// Whether the calling thread is the bus thread.
    public var isCurrentThread: Bool { UInt(pthread_self()) == busThread.load(ordering: .acquiring) }

    public func enqueue(_ job: consuming ExecutorJob) {
        let unownedJob = UnownedJob(job)
        let (accepted, first) = state.withLock { state in
            guard !state.stopped else { return (false, false) }
            state.jobs.append(unownedJob)
            pending.store(true, ordering: .releasing)
            return (true, state.jobs.count == 1)
        }
        guard accepted else {
            globalConcurrentExecutor.enqueue(ExecutorJob(unownedJob))
            return
        }
        if first, !isCurrentThread { wakeBusThread() }
    }

    /// Runs the jobs waiting now on the calling (bus) thread; whether it ran any. Jobs they
    /// enqueue wait for the next turn of the loop, which then does not sleep (a task that yields
    /// in a loop cannot hold the bus thread).
    @discardableResult
    func runPending() -> Bool {
        let jobs = state.withLock { state in
            defer {
                state.jobs.removeAll(keepingCapacity: true)
                pending.store(false, ordering: .releasing)
            }
            return state.jobs
        }
        for job in jobs { job.runSynchronously(on: asUnownedTaskExecutor()) }
        return !jobs.isEmpty
    }

    /// Hands the jobs still waiting, and every later one, to the global concurrent executor.
    func stop() {
        let jobs = state.withLock { state in
            state.stopped = true
            defer {
                state.jobs.removeAll()
                pending.store(false, ordering: .releasing)
            }
            return state.jobs
        }
        for job in jobs { globalConcurrentExecutor.enqueue(ExecutorJob(job)) }
    }
}
