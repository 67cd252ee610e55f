import Logging
import Synchronization

/// Gathers one request's UID writes into as few store round trips as the calls allow: a write
/// that arrives while another is being stored waits and goes out with every other write that
/// arrived meanwhile, in one batch. A write never waits for a call still in flight (a slow
/// partner doesn't hold back the fast partners' UIDs). With a store that keeps leases beside the
/// graph, the batch also gives back its calls' leases.
final class WriteBatcher: Sendable {
    /// One call's UID, and the key of the lease its call holds (when leases are given back with
    /// writes).
    struct Write: Sendable {
        var write: UIDWrite
        var leaseKey: String?
    }

    private struct Pending {
        var write: Write
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
    }

    private let graph: any IdentityGraph
    /// Where leases are given back with the writes, and whose they are.
    private let releasing: (store: any CombinedStore, holder: String)?
    private let ecHash: String
    private let logger: Logger
    private let onFailure: @Sendable (any Error) -> Void
    private let metrics: KernelMetrics
    private let state = Mutex(State())

    init(
        graph: any IdentityGraph,
        releasing: (store: any CombinedStore, holder: String)?,
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
    }

    /// Whether a write gives its call's lease back.
    var releasesLeases: Bool { releasing != nil }

    /// Stores `write` (in a batch with others arriving meanwhile); `nil` when the store failed.
    func write(_ write: Write) async -> WriteResult? {
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
    private func lead(with first: Write) async -> WriteResult? {
        // One turn of the scheduler first: calls that ended together (partners answering at
        // once) then join this batch instead of waiting for the next round trip.
        await Task.yield()
        var own: WriteResult?
        var leading = true
        while true {
            let batch: [Pending] = state.withLock { state in
                let batch = state.pending
                state.pending.removeAll()
                if batch.isEmpty && !leading { state.flushing = false }
                return batch
            }
            if batch.isEmpty && !leading { return own }
            var results = await store((leading ? [first] : []) + batch.map(\.write))[...]
            if leading {
                own = results.popFirst() ?? nil
                leading = false
            }
            for (pending, result) in zip(batch, results) { pending.continuation.resume(returning: .stored(result)) }
        }
    }

    private func store(_ batch: [Write]) async -> [WriteResult?] {
        let writes = batch.map(\.write)
        do {
            metrics.roundTrip(.write)
            let results: [WriteResult]
            if let releasing {
                let keys = batch.compactMap(\.leaseKey)
                results = try await releasing.store.write(writes, ecHash: ecHash, releasing: keys, holder: releasing.holder)
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
