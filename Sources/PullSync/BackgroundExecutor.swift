import Dispatch

/// Runs tasks on libdispatch's background-QoS threads, which run below the default-QoS threads
/// that Swift's global executor (and with it a Hummingbird app's handlers) uses: on Linux,
/// libdispatch gives them nice 10 (about a tenth of a nice-0 thread's share of a busy CPU).
///
/// ``PullSyncService`` passes it to its `PullDispatcher`, which decides and calls each request
/// in a child task that prefers this executor (a task executor preference: the task's jobs run
/// here, though a child task can't be given a lower priority than its parent's), so pull sync's
/// work neither queues ahead of a page's task in Swift's thread pool nor keeps a CPU from a
/// page's thread. Work on other threads (the transport's event loop, the store's) keeps its own.
public final class BackgroundExecutor: TaskExecutor {
    /// The one executor; it holds no state but the queue.
    public static let shared = BackgroundExecutor()

    private let queue = DispatchQueue.global(qos: .background)

    private init() {}

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
