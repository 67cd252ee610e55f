import Logging
import Synchronization

/// Gathers one request's UID writes into as few store round trips as the calls allow: a write
/// that arrives while another is being stored waits and goes out with every other write that
/// arrived meanwhile, in one batch. A write never waits for a call still in flight (a slow
/// partner doesn't hold back the fast partners' UIDs).
///
/// With a store that keeps leases beside the graph, the request's last write (every call ended,
/// no other write to come) also gives back every lease of the request, as the end-of-request
/// release would have: a lease is never given back before the request's calls have all ended.
final class WriteBatcher: Sendable {
    private struct Pending {
        var write: UIDWrite
        var continuation: CheckedContinuation<Turn, Never>
    }

    private enum Turn {
        /// Nobody was storing: this write leads.
        case lead
        /// A leader stored it in a batch.
        case stored(WriteResult?)
    }

    private struct State {
        var flushing = false
        var pending: [Pending] = []
        /// Calls of the request that have not ended yet.
        var callsRunning: Int
        /// Writes announced by calls that ended and not yet taken into a batch.
        var announced = 0
        /// The request's leases went back with its last write.
        var releasedLeases = false
    }

    private let graph: any IdentityGraph
    /// Where leases go back with the last write: the store, the holder and the request's keys.
    private let releasing: (store: any CombinedStore, holder: String, keys: [RateLimitKey])?
    private let ecHash: String
    private let logger: Logger
    private let onFailure: @Sendable (any Error) -> Void
    private let metrics: KernelMetrics
    private let state: Mutex<State>

    init(
        graph: any IdentityGraph,
        releasing: (store: any CombinedStore, holder: String, keys: [RateLimitKey])?,
        calls: Int,
        ecHash: String,
        metrics: KernelMetrics,
        logger: Logger,
        onFailure: @escaping @Sendable (any Error) -> Void
    ) {
        self.graph = graph
        self.releasing = releasing
        self.metrics = metrics
        self.ecHash = ecHash
        self.logger = logger
        self.onFailure = onFailure
        state = Mutex(State(callsRunning: calls))
    }

    /// Whether the request's leases went back with its last write (no release round trip needed).
    var releasedLeases: Bool { state.withLock { $0.releasedLeases } }

    /// A call of the request ended; `writing`: it will call ``write(_:)`` next, with nothing it
    /// awaits in between.
    func callEnded(writing: Bool) {
        state.withLock { state in
            state.callsRunning -= 1
            if writing { state.announced += 1 }
        }
    }

    /// Stores `write` (in a batch with others arriving meanwhile); `nil` when the store failed.
    func write(_ write: UIDWrite) async -> WriteResult? {
        let queued: Turn = await withCheckedContinuation { continuation in
            // Deciding and queueing under one lock: no write can slip between a leader's last
            // look at the queue and its leaving.
            let queued = state.withLock { state in
                if state.flushing {
                    state.pending.append(Pending(write: write, continuation: continuation))
                    return state.pending.count
                }
                state.flushing = true
                return 0
            }
            if queued == 0 {
                continuation.resume(returning: .lead)
            } else {
                logger.trace("UID write queued behind one being stored", metadata: ["queued": "\(queued)"])
            }
        }
        switch queued {
        case .lead: return await lead(with: write)
        case .stored(let result): return result
        }
    }

    /// Stores `first` with whatever queued up by then, then whatever queued up meanwhile, until
    /// nothing is left.
    private func lead(with first: UIDWrite) async -> WriteResult? {
        // While other calls run, turns of the scheduler first, for as long as each turn sees
        // another call end: calls that ended together (partners answering at once) then join
        // this batch instead of the next round trip. A turn in which none ended stops the wait,
        // so a call still waiting on its partner holds nothing back. A write that is no round
        // trip (a graph in memory) is not worth a turn: it goes at once.
        var running = graph.writeIsRoundTrip ? state.withLock { $0.callsRunning } : 0
        while running > 0 {
            await Task.yield()
            let stillRunning = state.withLock { $0.callsRunning }
            guard stillRunning < running else { break }
            running = stillRunning
        }
        var own: WriteResult?
        var leading = true
        while true {
            let (batch, last): ([Pending], Bool) = state.withLock { state in
                let batch = state.pending
                state.pending.removeAll()
                if batch.isEmpty && !leading {
                    state.flushing = false
                    return (batch, false)
                }
                state.announced -= batch.count + (leading ? 1 : 0)
                return (batch, state.callsRunning == 0 && state.announced == 0)
            }
            if batch.isEmpty && !leading { return own }
            var results = await store((leading ? [first] : []) + batch.map(\.write), last: last)[...]
            if leading {
                own = results.popFirst() ?? nil
                leading = false
            }
            for (pending, result) in zip(batch, results) { pending.continuation.resume(returning: .stored(result)) }
        }
    }

    /// Stores `writes`; the request's `last` batch also gives back its leases.
    private func store(_ writes: [UIDWrite], last: Bool) async -> [WriteResult?] {
        do {
            metrics.roundTrip(.write)
            let results: [WriteResult]
            if last, let releasing {
                results = try await releasing.store.write(
                    writes,
                    ecHash: ecHash,
                    releasing: releasing.keys,
                    holder: releasing.holder
                )
                state.withLock { $0.releasedLeases = true }
            } else {
                results = try await graph.write(writes, ecHash: ecHash)
            }
            guard results.count == writes.count else {
                throw StoreAnswerMismatch(asked: writes.count, got: results.count)
            }
            return results
        } catch {
            onFailure(error)
            return writes.map { _ in nil }
        }
    }
}
