#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Puts threads of pull sync's own below the threads that serve pages: the transport's event loop
/// gets the niceness of libdispatch's background-QoS threads (which run the dispatcher's work, see
/// ``BackgroundExecutor``), so the operating system runs a page's thread first when both want a
/// CPU. On Darwin it gets the background QoS class. (Not the store's threads: a page's EID lookup
/// reads the store, and would then wait behind the pages it competes with.)
///
/// Niceness, not the `SCHED_IDLE` class: an idle-class thread runs only on an otherwise idle CPU,
/// so one preempted while holding a lock that a page's thread then waits for (the dispatcher's
/// queue, say) holds up the page until a CPU falls idle. Tried for measure 3 of BENCHMARKS.md,
/// it made a new browser's p50 worse, not better.
package enum ThreadPriority {
    /// The niceness of a lowered thread on Linux, libdispatch's for background-QoS threads: it
    /// gets about a tenth of a nice-0 thread's share of a busy CPU, and all of an idle one.
    package static let backgroundNice: Int32 = 10

    /// Lowers the calling thread (only it: on Linux a thread's niceness is its own). Where that
    /// is refused, the thread keeps its priority: lower is better, not required.
    package static func lowerCurrentThread() {
        #if os(Linux)
        // PRIO_PROCESS with 0 names the calling thread, not the whole process, on Linux.
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, backgroundNice)
        #elseif canImport(Darwin)
        _ = pthread_set_qos_class_self_np(QOS_CLASS_BACKGROUND, 0)
        #endif
    }
}
