import Dispatch
import NIOCore
import Synchronization

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
///
/// Its parallelism is bounded: jobs run on `lanes` serial queues, so at most that many of pull
/// sync's jobs run at once, and a job enqueued while its lane is busy waits for it rather than
/// waking another thread. Pull sync's jobs are short (a decision, a step of a call), and on a
/// small machine the thread wake-ups between them cost more than the jobs: in measure 3 of
/// BENCHMARKS.md (2 cores, one lane) the server's context switches per new browser fell from
/// about 6.1 to 5.2, and its CPU per page, against the same server without pull sync, from 2.95
/// to 2.69 times.
public final class BackgroundExecutor: TaskExecutor {
    /// The executor ``PullSyncService`` uses: a lane per four cores, at least one.
    public static let shared = BackgroundExecutor(lanes: max(1, System.coreCount / 4))

    private let lanes: [DispatchQueue]
    private let nextLane = Atomic<UInt>(0)

    /// - Parameter lanes: how many of its jobs may run at once (at least 1); each lane is a
    ///   serial queue on libdispatch's background-QoS threads.
    public init(lanes: Int) {
        precondition(lanes > 0, "a background executor needs at least one lane")
        // Each lane drains on the background-QoS pool's threads (not an overcommit thread of its own).
        let pool = DispatchQueue.global(qos: .background)
        self.lanes = (0..<lanes).map { lane in
            DispatchQueue(label: "pullsync.background.\(lane)", qos: .background, target: pool)
        }
    }

    /// How many of its jobs may run at once.
    public var laneCount: Int { lanes.count }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        // A task's jobs run one after another whatever the lane, so lanes are taken in turn (with
        // one lane, no shared counter for every thread that enqueues, a page's among them).
        var lane = lanes[0]
        if lanes.count > 1 {
            lane = lanes[Int(nextLane.wrappingAdd(1, ordering: .relaxed).oldValue % UInt(lanes.count))]
        }
        lane.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
