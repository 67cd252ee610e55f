import PullSyncKernel
import PullSyncStorage
import PullSyncTesting
import Synchronization
import Testing

/// Issue 8: a partner's budget is checked again when a call is about to be sent, against send
/// times, per process and (with a store that shares budgets) across nodes.
@Suite("Budgets at send time")
struct SharedBudgetKernelTests {
    /// Shares budgets; refuses sends for `refusedKey`, and records what it was asked.
    final class BudgetStore: RateLimiter {
        let base = InMemoryRateLimiter()
        let refusedKey: String
        let asked = Mutex<[SharedBudget]>([])

        init(refusedKey: String) { self.refusedKey = refusedKey }

        var sharesBudgets: Bool { true }

        func acquire(_ requests: [RateLimitRequest], at now: Timestamp) async throws -> [Bool] {
            try await base.acquire(requests, at: now)
        }

        func count(key: RateLimitKey, window: Duration, at now: Timestamp) async throws -> Int {
            try await base.count(key: key, window: window, at: now)
        }

        func takeBudget(_ budget: SharedBudget, at now: Timestamp) async throws -> Bool {
            asked.withLock { $0.append(budget) }
            return budget.key != refusedKey
        }
    }

    @Test("A shared budget that refuses: the call is not sent and counts as a budget decision")
    func sharedRefusal() async throws {
        let store = BudgetStore(refusedKey: "budget:a")
        let harness = try Harness(
            partners: partners(["a", "b", "c"]) { partner in
                if partner.id != "c" { partner.policy.budgetPerSecond = partner.id == "a" ? 1 : 50 }
            },
            rateLimiter: store
        )
        let report = await harness.kernel.process(request(1, issued: true))
        #expect(report.results.map(\.partnerID).sorted() == ["b", "c"])
        #expect(store.asked.withLock { $0 }.map(\.key).sorted() == ["budget:a", "budget:b"])
        #expect(harness.calls("a") == 0)
        #expect(harness.decisions("a", "budget") == 1)
        // What planning took was given back: the EC can be tried again when the budget has room.
        #expect(await harness.kernel.explain(request(1)).decision(for: "a") == .dispatch)
    }

    @Test("Per process: at most the budget's sends in any second, however planning bunched them")
    func sendWindow() {
        let guardian = [3, nil].map { budget in PartnerProtection(
            budget: budget) }
        let t0 = Timestamp(secondsSinceEpoch: 1_000)
        #expect((0..<3).allSatisfy { _ in guardian[0].takeSendSlot(at: t0) })
        #expect(!guardian[0].takeSendSlot(at: t0 + .milliseconds(999)))
        #expect(guardian[0].takeSendSlot(at: t0 + .seconds(1)))
        #expect(guardian[0].takeSendSlot(at: t0 + .seconds(1)))
        #expect(guardian[0].takeSendSlot(at: t0 + .seconds(1)))
        #expect(!guardian[0].takeSendSlot(at: t0 + .milliseconds(1999)))
        #expect((0..<1000).allSatisfy { _ in guardian[1].takeSendSlot(at: t0) })
        // 50/s is spread: at most 5 in any 100 ms, 50 in any second.
        let spread = PartnerProtection(
            budget: 50)
        #expect((0..<5).allSatisfy { _ in spread.takeSendSlot(at: t0) })
        #expect(!spread.takeSendSlot(at: t0 + .milliseconds(99)))
        var sent = 5
        for step in 1..<30 where spread.takeSendSlot(at: t0 + .milliseconds(100 * step)) { sent += 1 }
        #expect(sent == 34)
        var inSecond = 0
        for tick in 0..<1000 where spread.takeSendSlot(at: t0 + .seconds(3) + .milliseconds(tick)) { inSecond += 1 }
        #expect(inSecond == 50)
        let fractional = PartnerProtection(
            budget: 0.5)
        #expect(fractional.takeSendSlot(at: t0))
        #expect(!fractional.takeSendSlot(at: t0 + .milliseconds(1999)))
        #expect(fractional.takeSendSlot(at: t0 + .seconds(2)))
    }

    @Test("A store that doesn't share budgets is never asked")
    func notShared() async throws {
        let harness = try Harness(partners: partners(["a"]) { $0.policy.budgetPerSecond = 5 })
        #expect(!harness.rateLimiter.sharesBudgets)
        #expect(await harness.kernel.process(request(1, issued: true)).plan.decision(for: "a") == .dispatch)
        #expect(harness.calls("a") == 1)
    }
}
