import Synchronization

/// An exact sliding-window rate limiter in process memory.
///
/// Keeps, per key, the send times still inside the window (at most `calls` of them), so
/// memory is bounded by keys × limit, and expired keys are dropped as they are touched and
/// by ``purge(before:)``.
public final class InMemoryRateLimiter: RateLimiter {
    private let windows: Mutex<[String: [Timestamp]]>

    public init() {
        self.windows = Mutex([:])
    }

    public func acquire(_ requests: [RateLimitRequest], at now: Timestamp) async throws -> [Bool] {
        windows.withLock { windows in
            requests.map { request in
                let start = now - request.policy.window
                var times = windows[request.key, default: []]
                times.removeAll { $0 <= start }
                let admitted = times.count < request.policy.calls
                if admitted { times.append(now) }
                windows[request.key] = times.isEmpty ? nil : times
                return admitted
            }
        }
    }

    public func count(key: String, window: Duration, at now: Timestamp) async throws -> Int {
        let start = now - window
        return windows.withLock { windows in
            windows[key, default: []].count { $0 > start }
        }
    }

    /// Drops send times older than `cutoff`; returns how many keys remain.
    @discardableResult
    public func purge(before cutoff: Timestamp) -> Int {
        windows.withLock { windows in
            for (key, times) in windows {
                let kept = times.filter { $0 > cutoff }
                windows[key] = kept.isEmpty ? nil : kept
            }
            return windows.count
        }
    }
}
