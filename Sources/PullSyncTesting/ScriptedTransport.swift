public import PullSyncKernel
import Synchronization

/// A transport whose answers are scripted per host, which records every request and the
/// peak number of calls in flight. For kernel tests: no sockets.
public final class ScriptedTransport: PullTransport {
    /// One scripted answer.
    public struct Reply: Sendable {
        /// What the transport answers.
        public var result: TransportResult
        /// How long to wait before answering (honours cancellation and the call's timeout): a
        /// partner's latency, never a way to order events (use ``held(by:)`` for that).
        public var delay: Duration
        /// When set, the call waits for this gate to open before answering (after `delay`). It
        /// honours cancellation (answering `transportError`, as a cut call does) but not the
        /// call's timeout: the test decides when the partner answers.
        public var gate: TestGate?

        /// Creates a reply of `result`, answered after `delay` (default at once).
        public init(_ result: TransportResult, after delay: Duration = .zero) {
            self.result = result
            self.delay = delay
            self.gate = nil
        }

        /// This reply, answered only once `gate` opens.
        public func held(by gate: TestGate) -> Reply {
            var reply = self
            reply.gate = gate
            return reply
        }

        /// `200` with `body` as UTF-8.
        public static func ok(_ body: String, after delay: Duration = .zero) -> Reply {
            Reply(.response(status: 200, headers: [], body: Array(body.utf8)), after: delay)
        }

        /// `200 {"uid": uid}`.
        public static func uid(_ uid: String, after delay: Duration = .zero) -> Reply {
            ok("{\"uid\":\"\(uid)\"}", after: delay)
        }

        /// A bare status with an empty body.
        public static func status(_ status: Int, after delay: Duration = .zero) -> Reply {
            Reply(.response(status: status, headers: [], body: []), after: delay)
        }

        /// A transport failure.
        public static func failure(_ failure: TransportFailure, after delay: Duration = .zero) -> Reply {
            Reply(.failure(failure), after: delay)
        }
    }

    /// A request as it was sent, with when it started and ended relative to the first one.
    public struct Record: Sendable {
        /// The request as the kernel handed it over.
        public var request: PullRequest
        /// The deadline and body limit the call was sent with.
        public var limits: TransportLimits
        /// When the call reached the transport.
        public var startedAt: ContinuousClock.Instant
        /// When it answered; `nil` while it is in flight.
        public var endedAt: ContinuousClock.Instant?
    }

    /// Someone waiting for a number of calls to have started or ended.
    private struct Waiter {
        var ended: Bool
        var count: Int
        var continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var replies: [String: Reply] = [:]
        var records: [Record] = []
        var ended = 0
        var inFlight = 0
        var peakInFlight = 0
        var inFlightByHost: [String: Int] = [:]
        var waiters: [Waiter] = []

        /// Removes and returns the waiters whose count has been reached.
        mutating func reachedWaiters() -> [CheckedContinuation<Void, Never>] {
            var reached: [CheckedContinuation<Void, Never>] = []
            var waiting: [Waiter] = []
            for waiter in waiters {
                if (waiter.ended ? ended : records.count) >= waiter.count {
                    reached.append(waiter.continuation)
                } else {
                    waiting.append(waiter)
                }
            }
            waiters = waiting
            return reached
        }
    }

    private let state = Mutex(State())
    private let fallback: Reply

    /// Hosts with no script get `fallback` (default `404`).
    public init(fallback: Reply = .status(404)) {
        self.fallback = fallback
    }

    /// Scripts the answer for every request to `host`.
    public func script(_ host: String, _ reply: Reply) {
        state.withLock { $0.replies[HostName.normalize(host)] = reply }
    }

    public func send(_ request: PullRequest, limits: TransportLimits) async -> TransportResult {
        typealias Started = (reply: Reply, index: Int, reached: [CheckedContinuation<Void, Never>])
        let (reply, index, reached) = state.withLock { (state: inout State) -> Started in
            state.inFlight += 1
            state.peakInFlight = max(state.peakInFlight, state.inFlight)
            state.inFlightByHost[request.url.host, default: 0] += 1
            state.records.append(
                Record(request: request, limits: limits, startedAt: .now, endedAt: nil)
            )
            let reply = state.replies[request.url.host] ?? fallback
            return (reply, state.records.count - 1, state.reachedWaiters())
        }
        for waiter in reached { waiter.resume() }
        defer {
            let reached = state.withLock { (state: inout State) -> [CheckedContinuation<Void, Never>] in
                state.inFlight -= 1
                state.inFlightByHost[request.url.host, default: 1] -= 1
                state.records[index].endedAt = .now
                state.ended += 1
                return state.reachedWaiters()
            }
            for waiter in reached { waiter.resume() }
        }
        if reply.delay > .zero {
            let wait = min(reply.delay, limits.timeout)
            do {
                try await Task.sleep(for: wait)
            } catch {
                return .failure(.transportError)
            }
            if reply.delay > limits.timeout { return .failure(.timeout) }
        }
        if let gate = reply.gate {
            guard await gate.waitUnlessCancelled() else { return .failure(.transportError) }
        }
        return reply.result
    }

    /// Waits until `count` calls have started (a signal from ``send(_:limits:)``, not a poll);
    /// returns whether they did before the hang guard `limit`, which is no timing assertion.
    public func started(_ count: Int, within limit: Duration = .seconds(300)) async -> Bool {
        await reached(count, ended: false, within: limit)
    }

    /// Waits until `count` calls have ended (answered, failed or been cut); returns whether they
    /// did before the hang guard `limit`, which is no timing assertion.
    public func ended(_ count: Int, within limit: Duration = .seconds(300)) async -> Bool {
        await reached(count, ended: true, within: limit)
    }

    private func reached(_ count: Int, ended: Bool, within limit: Duration) async -> Bool {
        let outcome: Result<Void, any Error>? = await finishing(within: limit) { [self] () async -> Void in
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now: Bool = state.withLock { (state: inout State) -> Bool in
                    if (ended ? state.ended : state.records.count) >= count { return true }
                    state.waiters.append(Waiter(ended: ended, count: count, continuation: continuation))
                    return false
                }
                if now { continuation.resume() }
            }
        }
        return outcome != nil
    }

    /// Every request sent so far, in start order.
    public var records: [Record] { state.withLock { $0.records } }
    /// Requests sent so far.
    public var requests: [PullRequest] { records.map(\.request) }
    /// The most calls that were in flight at once.
    public var peakInFlight: Int { state.withLock { $0.peakInFlight } }
    /// Calls in flight now.
    public var inFlight: Int { state.withLock { $0.inFlight } }
    /// Calls that have ended so far.
    public var endedCount: Int { state.withLock { $0.ended } }
    /// How many requests went to `host`.
    public func count(host: String) -> Int {
        let host = HostName.normalize(host)
        return state.withLock { $0.records.count { $0.request.url.host == host } }
    }
}
