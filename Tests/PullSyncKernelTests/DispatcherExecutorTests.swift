import Dispatch
import PullSyncKernel
import PullSyncTesting
import Synchronization
import Testing

/// A task executor on a serial queue of its own, which can tell whether the caller runs on it.
final class QueueExecutor: TaskExecutor {
    private static let key = DispatchSpecificKey<Bool>()
    private let queue = DispatchQueue(label: "pullsync-test-executor")
    let jobs = Atomic(0)

    init() { queue.setSpecific(key: Self.key, value: true) }

    /// Whether the calling code runs on this executor's queue.
    static var isCurrent: Bool { DispatchQueue.getSpecific(key: key) == true }

    func enqueue(_ job: consuming ExecutorJob) {
        jobs.add(1, ordering: .relaxed)
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// Where the dispatcher runs its requests: on the executor it was given (``PullSyncService``
/// gives one below the pages' priority), else on Swift's global executor.
@Suite("Dispatcher executor")
struct DispatcherExecutorTests {
    @Test("Each request is decided and called on the dispatcher's executor, when it has one", arguments: [true, false])
    func requestsRunOnTheExecutor(withExecutor: Bool) async throws {
        let onExecutor = Box<[Bool]>([])
        let harness = try Harness(
            partners: partners(["a", "b"]),
            fallback: .uid("u"),
            wrapTransport: { base in
                HookTransport(base: base) { _ in onExecutor.update { $0.append(QueueExecutor.isCurrent) } }
            }
        )
        let executor = QueueExecutor()
        let dispatcher = PullDispatcher(kernel: harness.kernel, executor: withExecutor ? executor : nil)
        #expect(dispatcher.submit(request(1, issued: true)) == .enqueued)
        #expect(dispatcher.submit(request(2, issued: true)) == .enqueued)

        let running = Task { await dispatcher.run() }
        #expect(await eventually { dispatcher.statistics.processed == 2 })
        dispatcher.beginShutdown()
        await running.value

        #expect(dispatcher.statistics.stored == 4)
        #expect(onExecutor.value == Array(repeating: withExecutor, count: 4))
        #expect((executor.jobs.load(ordering: .relaxed) > 0) == withExecutor)
    }
}
