package import PullSyncKernel
import Synchronization

/// An exact sliding-window rate limiter in process memory.
///
/// Keeps, per key, the send times still inside the window (at most `calls` of them), so
/// memory is bounded by the keys active in the last window × limit: expired times are dropped
/// as keys are touched, and keys nobody touches again are swept at most once per
/// `sweepInterval` (a pass over all keys, amortized over the calls in between).
package final class InMemoryRateLimiter: RateLimiter {
    private struct State {
        /// Send times per key, and the window they were counted in.
        var windows: [RateLimitKey: (times: [Timestamp], window: Duration)] = [:]
        var lastSweep: Timestamp?
    }

    private let state: Mutex<State>
    private let sweepInterval: Duration

    /// - Parameter sweepInterval: how often keys idle past their window are forgotten. Default 60 s.
    package init(sweepInterval: Duration = .seconds(60)) {
        self.state = Mutex(State())
        self.sweepInterval = sweepInterval
    }

    package func acquire(_ requests: [RateLimitRequest], at now: Timestamp) async throws -> [Bool] {
        state.withLock { state in
            sweepIfDue(&state, now: now)
            return requests.map { Self.count($0, in: &state, at: now) }
        }
    }

    /// Counts one call, as ``acquire(_:at:)`` does for each of its requests.
    package func acquire(_ request: RateLimitRequest, at now: Timestamp) -> Bool {
        state.withLock { state in
            sweepIfDue(&state, now: now)
            return Self.count(request, in: &state, at: now)
        }
    }

    private func sweepIfDue(_ state: inout State, now: Timestamp) {
        if let lastSweep = state.lastSweep {
            if now - lastSweep >= sweepInterval { Self.sweep(&state, now: now) }
        } else {
            state.lastSweep = now
        }
    }

    private static func count(_ request: RateLimitRequest, in state: inout State, at now: Timestamp) -> Bool {
        // The key's entry is looked up once and updated in place through the dictionary's
        // accessor: each lookup hashes the partner's id and compares the EC's 64-byte hash.
        let admitted = record(
            now,
            policy: request.policy,
            in: &state.windows[request.key, default: ([], request.policy.window)]
        )
        // A limit of no calls keeps no send time: nothing to remember (any other refusal keeps
        // at least the limit's worth).
        if !admitted, request.policy.calls <= 0 { state.windows[request.key] = nil }
        return admitted
    }

    /// Drops `entry`'s send times outside the window, then records `now` if the limit allows.
    private static func record(
        _ now: Timestamp,
        policy: RateLimitPolicy,
        in entry: inout (times: [Timestamp], window: Duration)
    ) -> Bool {
        let start = now - policy.window
        entry.times.removeAll { $0 <= start }
        entry.window = policy.window
        guard entry.times.count < policy.calls else { return false }
        entry.times.append(now)
        return true
    }

    /// Takes back one call counted at `now` under each of `keys` (a call counted but not made).
    package func uncount(_ keys: [RateLimitKey], at now: Timestamp) {
        state.withLock { state in
            for key in keys {
                guard let index = state.windows[key]?.times.lastIndex(of: now) else { continue }
                state.windows[key]!.times.remove(at: index)
                if state.windows[key]!.times.isEmpty { state.windows[key] = nil }
            }
        }
    }

    private static func sweep(_ state: inout State, now: Timestamp) {
        state.lastSweep = now
        state.windows = state.windows.filter { _, entry in
            guard let newest = entry.times.last else { return false }
            return newest > now - entry.window
        }
    }

    /// Keys currently held (for tests and metrics).
    package var keyCount: Int { state.withLock { $0.windows.count } }

    package func count(key: RateLimitKey, window: Duration, at now: Timestamp) async throws -> Int {
        let start = now - window
        return state.withLock { state in
            state.windows[key]?.times.count { $0 > start } ?? 0
        }
    }

    /// Drops send times older than `cutoff`; returns how many keys remain.
    @discardableResult
    package func purge(before cutoff: Timestamp) -> Int {
        state.withLock { state in
            for (key, entry) in state.windows {
                let kept = entry.times.filter { $0 > cutoff }
                state.windows[key] = kept.isEmpty ? nil : (kept, entry.window)
            }
            return state.windows.count
        }
    }
}
