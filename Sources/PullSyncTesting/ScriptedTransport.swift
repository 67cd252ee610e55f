public import PullSyncKernel
import Synchronization

/// A transport whose answers are scripted per host, which records every request and the
/// peak number of calls in flight. For kernel tests: no sockets.
public final class ScriptedTransport: PullTransport {
    /// One scripted answer.
    public struct Reply: Sendable {
        public var result: TransportResult
        /// How long to wait before answering (honours cancellation and the call's timeout).
        public var delay: Duration

        public init(_ result: TransportResult, after delay: Duration = .zero) {
            self.result = result
            self.delay = delay
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
        public var request: PullRequest
        public var limits: TransportLimits
        public var startedAt: ContinuousClock.Instant
        public var endedAt: ContinuousClock.Instant?
    }

    private struct State {
        var replies: [String: Reply] = [:]
        var records: [Record] = []
        var inFlight = 0
        var peakInFlight = 0
        var inFlightByHost: [String: Int] = [:]
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
        let (reply, index) = state.withLock { state in
            state.inFlight += 1
            state.peakInFlight = max(state.peakInFlight, state.inFlight)
            state.inFlightByHost[request.url.host, default: 0] += 1
            state.records.append(
                Record(request: request, limits: limits, startedAt: .now, endedAt: nil)
            )
            return (state.replies[request.url.host] ?? fallback, state.records.count - 1)
        }
        defer {
            state.withLock { state in
                state.inFlight -= 1
                state.inFlightByHost[request.url.host, default: 1] -= 1
                state.records[index].endedAt = .now
            }
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
        return reply.result
    }

    /// Every request sent so far, in start order.
    public var records: [Record] { state.withLock { $0.records } }
    /// Requests sent so far.
    public var requests: [PullRequest] { records.map(\.request) }
    /// The most calls that were in flight at once.
    public var peakInFlight: Int { state.withLock { $0.peakInFlight } }
    /// Calls in flight now.
    public var inFlight: Int { state.withLock { $0.inFlight } }
    /// How many requests went to `host`.
    public func count(host: String) -> Int {
        let host = HostName.normalize(host)
        return state.withLock { $0.records.count { $0.request.url.host == host } }
    }
}
