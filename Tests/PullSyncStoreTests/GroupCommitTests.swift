import PullSyncStorage
import PullSyncTesting
import Synchronization
import Testing

/// The queue both stores' UID writes share: who leads, what goes in a batch, who gets what.
@Suite("Group commit")
struct GroupCommitTests {
    /// Submits `items` one after another, each once the one before is waiting, while the first
    /// one's batch is held by `gate`; returns each item's output and the batches committed.
    static func submit(
        _ items: [Int],
        to group: GroupCommit<Int, String>,
        failing: Set<Int> = []
    ) async throws -> (outputs: [Int: String], batches: [[Int]]) {
        let gate = TestGate()
        let batches = Batches()
        let outputs = try await withThrowingTaskGroup(of: (Int, String).self) { tasks in
            for (index, item) in items.enumerated() {
                tasks.addTask {
                    // A failure is told by its error's item, to check who got it.
                    do {
                        return (
                            item, try await Self.submit(item, to: group, batches: batches, gate: gate, failing: failing)
                        )
                    } catch let refused as Refused {
                        return (item, "refused-\(refused.item)")
                    }
                }
                // The first leads and holds its batch at the gate; the others wait in turn.
                let waiting = index
                try #require(await eventually { batches.count == 1 && group.waitingCount == waiting })
            }
            gate.open()
            var outputs: [Int: String] = [:]
            while let next = try await tasks.next() { outputs[next.0] = next.1 }
            return outputs
        }
        return (outputs, batches.all)
    }

    /// One item, whose commit records its batch and holds the first batch at `gate`.
    static func submit(
        _ item: Int,
        to group: GroupCommit<Int, String>,
        batches: Batches,
        gate: TestGate,
        failing: Set<Int>
    ) async throws -> String {
        try await group.submit(item) { batch in
            if batches.append(batch) == 1 { await gate.wait() }
            return batch.map { failing.contains($0) ? .failure(Refused(item: $0)) : .success("out-\($0)") }
        }
    }

    @Test("What arrives while a batch is stored goes in the next batch, in order, and each caller gets its own output")
    func waitingItemsShareTheNextBatch() async throws {
        let group = GroupCommit<Int, String>()
        let (outputs, batches) = try await Self.submit([1, 2, 3, 4], to: group)
        #expect(batches == [[1], [2, 3, 4]])
        #expect(outputs == [1: "out-1", 2: "out-2", 3: "out-3", 4: "out-4"])
        #expect(group.waitingCount == 0)
    }

    @Test("A batch holds at most maxBatch items; the rest go in the next")
    func batchesAreBounded() async throws {
        let group = GroupCommit<Int, String>(maxBatch: 2)
        let (outputs, batches) = try await Self.submit([1, 2, 3, 4, 5], to: group)
        #expect(batches == [[1], [2, 3], [4, 5]])
        #expect(outputs.count == 5)
    }

    @Test("An item's failure reaches its own caller only")
    func failuresAreEachItemsOwn() async throws {
        let group = GroupCommit<Int, String>()
        let (outputs, _) = try await Self.submit([1, 2, 3, 4], to: group, failing: [3])
        #expect(outputs == [1: "out-1", 2: "out-2", 3: "refused-3", 4: "out-4"])
        // The queue goes on: the next item leads at once.
        #expect(try await group.submit(5) { batch in batch.map { .success("again-\($0)") } } == "again-5")
    }

    @Test("A commit that returns the wrong number of results fails its batch instead of leaving callers waiting")
    func wrongResultCountFailsTheBatch() async throws {
        let group = GroupCommit<Int, String>()
        await #expect(throws: GroupCommitError.self) {
            try await group.submit(1) { _ in [] }
        }
        #expect(group.waitingCount == 0)
    }

    struct Refused: Error, Equatable {
        var item: Int
    }

    /// The batches committed, in order.
    final class Batches: Sendable {
        private let batches = Mutex<[[Int]]>([])

        /// Records `batch`; returns how many there are now.
        func append(_ batch: [Int]) -> Int {
            batches.withLock { batches in
                batches.append(batch)
                return batches.count
            }
        }

        var count: Int { batches.withLock { $0.count } }
        var all: [[Int]] { batches.withLock { $0 } }
    }
}
