import Dispatch

/// Runs tasks on libdispatch's background-QoS threads, which run below the default-QoS threads
/// that Swift's global executor (and with it a Hummingbird app's handlers) uses: on Linux,
/// libdispatch gives them nice 10 (about a tenth of a nice-0 thread's share of a busy CPU).
///
/// ``PullSyncService`` passes it to its `PullDispatcher`, which reads its queue and decides and
/// calls each request in child tasks that prefer this executor (a task executor preference: the
/// tasks' jobs run here, though a child task can't be given a lower priority than its parent's),
/// so pull sync's work neither queues ahead of a page's task in Swift's thread pool nor keeps a
/// CPU from a page's thread. Work on other threads keeps their priority unless lowered: the
/// service lowers the transport's event loop too (``HTTPPullTransport``'s `belowPages`), not
/// the store's thread pool, which a page's EID lookup also uses.
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
