import NIOCore

/// A task executor that runs its jobs on one NIO event loop.
///
/// Code that prefers it runs on the event loop's thread, and an async call it makes to a
/// function without isolation of its own continues in the same turn of the loop, so nothing the
/// loop does in between (a channel closing, say) can come between a check and what follows it.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
