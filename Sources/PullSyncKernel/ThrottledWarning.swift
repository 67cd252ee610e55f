package import Logging
import Synchronization

/// Logs a recurring warning at most once per interval, with how many were held back since:
/// a store that is down fails every request, and one line per request would bury the log.
package final class ThrottledWarning: Sendable {
    private struct State {
        var last: ContinuousClock.Instant?
        var suppressed = 0
    }

    private let state = Mutex(State())
    private let interval: Duration
    private let now: @Sendable () -> ContinuousClock.Instant

    /// - Parameters:
    ///   - interval: the least time between two lines. Default 30 s.
    ///   - now: the monotonic time (injected by tests). Default `ContinuousClock.now`.
    package init(
        interval: Duration = .seconds(30),
        now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }
    ) {
        self.interval = interval
        self.now = now
    }

    /// Logs `message` now if the interval has passed since the last line, else counts it.
    package func warning(_ message: @autoclosure () -> Logger.Message, metadata: Logger.Metadata, to logger: Logger) {
        let now = self.now()
        let suppressed: Int? = state.withLock { state in
            if let last = state.last, now - last < interval {
                state.suppressed += 1
                return nil
            }
            state.last = now
            defer { state.suppressed = 0 }
            return state.suppressed
        }
        guard let suppressed else { return }
        var metadata = metadata
        if suppressed > 0 { metadata["suppressed_since_last"] = "\(suppressed)" }
        logger.warning(message(), metadata: metadata)
    }
}
