import Synchronization

/// Group commit: operations submitted while another batch is being stored wait, and the next
/// batch stores them together (one transaction or statement for many requests' writes).
///
/// There is no timer: the first operation to arrive with nobody storing leads at once and
/// stores the queue as it is when it gets to it; an operation that arrives meanwhile waits only
/// for that batch to end. So a lone write costs no extra wait, and under load the round trips
/// per write fall as batches grow.
package final class GroupCommit<Item: Sendable, Output: Sendable>: Sendable {
    private struct Queue: ~Copyable {
        var waiting: [Entry] = []
        var leading = false
    }

    private struct Entry: Sendable {
        var item: Item
        /// `nil` for the leader's own item: it learns its result in its own loop.
        var continuation: CheckedContinuation<Turn, any Error>?
    }

    private enum Turn: Sendable {
        /// Nobody was storing: this caller stores the queue.
        case lead
        /// A leader stored the item.
        case done(Output)
    }

    private let queue = Mutex(Queue())
    private let maxBatch: Int

    /// - Parameter maxBatch: the most items one batch stores; the rest wait for the next.
    package init(maxBatch: Int = .max) {
        precondition(maxBatch > 0, "a batch holds at least one item")
        self.maxBatch = maxBatch
    }

    /// Items waiting for a batch, a leader's own included (for tests).
    package var waitingCount: Int { queue.withLock { $0.waiting.count } }

    /// Stores `item` in a batch and returns its result.
    ///
    /// - Parameters:
    ///   - prepare: what a leader waits for before it takes the queue (its connection's turn, say),
    ///     so that what arrives meanwhile goes in the same batch. If it throws (the leader was
    ///     cancelled), the leader's item fails with that error and the queue goes on without it.
    ///   - commit: stores a batch and returns one result per item, in the batch's order. It runs
    ///     after `prepare`, for the batch of the caller whose `prepare` ran.
    package func submit(
        _ item: Item,
        prepare: () async throws -> Void = {},
        commit: ([Item]) async -> [Result<Output, any Error>]
    ) async throws -> Output {
        let turn: Turn = try await withCheckedThrowingContinuation { continuation in
            // Deciding and queueing under one lock: nothing can slip in after a leader's last look.
            let leads = queue.withLock { queue in
                let leads = !queue.leading
                queue.leading = true
                queue.waiting.append(Entry(item: item, continuation: leads ? nil : continuation))
                return leads
            }
            if leads { continuation.resume(returning: .lead) }
        }
        if case .done(let output) = turn { return output }
        do {
            try await prepare()
        } catch {
            queue.withLock { queue in queue.waiting.removeAll { $0.continuation == nil } }
            handOver()
            throw error
        }
        // The leader is the queue's first entry (it leads only when the queue was empty, or is
        // handed the first place), so its own item is in the batch.
        let batch = queue.withLock { queue in
            let count = min(maxBatch, queue.waiting.count)
            defer { queue.waiting.removeFirst(count) }
            return Array(queue.waiting.prefix(count))
        }
        var results = await commit(batch.map(\.item))
        if results.count != batch.count {
            let error = GroupCommitError(batch: batch.count, results: results.count)
            results = batch.map { _ in .failure(error) }
        }
        handOver()
        var own: Result<Output, any Error>?
        for (entry, result) in zip(batch, results) {
            guard let continuation = entry.continuation else {
                own = result
                continue
            }
            continuation.resume(with: result.map { .done($0) })
        }
        guard let own else { throw GroupCommitError(batch: batch.count, results: results.count) }
        return try own.get()
    }

    /// Makes the first waiting item's caller the next leader, or marks the queue idle.
    private func handOver() {
        let next = queue.withLock { queue -> CheckedContinuation<Turn, any Error>? in
            guard !queue.waiting.isEmpty else {
                queue.leading = false
                return nil
            }
            defer { queue.waiting[0].continuation = nil }
            return queue.waiting[0].continuation
        }
        next?.resume(returning: .lead)
    }
}

/// A batch's commit gave back a different number of results than it was given items: a bug in
/// the store, reported to every caller in the batch rather than leaving one waiting.
package struct GroupCommitError: Error, CustomStringConvertible {
    var batch: Int
    var results: Int

    package var description: String { "a group commit of \(batch) items returned \(results) results" }
}
