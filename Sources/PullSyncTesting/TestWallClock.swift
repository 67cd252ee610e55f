public import PullSyncKernel
import Synchronization

/// A wall clock that moves only when told to.
public final class TestWallClock: WallClock {
    private let current: Mutex<Timestamp>

    /// Starts at `start` (default 2026-01-01T00:00:00Z).
    public init(start: Timestamp = Timestamp(secondsSinceEpoch: 1_767_225_600)) {
        self.current = Mutex(start)
    }

    public func now() -> Timestamp { current.withLock { $0 } }

    /// Moves the clock forward by `duration`.
    public func advance(by duration: Duration) {
        current.withLock { $0 = $0 + duration }
    }

    /// Monotonic instants that move only with this clock, for seams that read `ContinuousClock`
    /// (a throttle, an address TTL): the real instant of this call, plus however far the clock
    /// has moved since.
    public func continuousNow() -> @Sendable () -> ContinuousClock.Instant {
        let origin = now()
        let base = ContinuousClock.now
        return { [self] () -> ContinuousClock.Instant in base + (self.now() - origin) }
    }

    /// Sets the clock to `timestamp`.
    public func set(_ timestamp: Timestamp) {
        current.withLock { $0 = timestamp }
    }
}
