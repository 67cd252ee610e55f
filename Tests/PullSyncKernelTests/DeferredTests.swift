import PullSyncKernel
import PullSyncTesting
import Testing

/// Spec "Behaviour" 4: at most `maxCallsPerRequest` calls per request, the rest waiting for
/// later requests of the same EC (`deferred`).
@Suite("Deferred calls (maxCallsPerRequest)")
struct DeferredTests {
    @Test("2 of 5 eligible partners are dispatched, 3 deferred; later requests reach the others")
    func laterRequestsReachTheRest() async throws {
        let ids = ["a", "b", "c", "d", "e"]
        let harness = try Harness(
            partners: partners(ids),
            configuration: PullSyncConfiguration(maxCallsPerRequest: 2)
        )
        for id in ids { harness.transport.script(TestPartners.host(id), .uid("uid-\(id)")) }
        try await harness.seed(1)

        let first = await harness.kernel.process(request(1))
        let firstDispatched = first.plan.decisions.filter { $0.decision == .dispatch }.map(\.partnerID)
        let firstDeferred = first.plan.decisions.filter { $0.decision == .skip(.deferred) }.map(\.partnerID)
        #expect(first.plan.calls.count == 2)
        #expect(firstDispatched.count == 2)
        #expect(firstDeferred.count == 3)
        #expect(Set(firstDispatched + firstDeferred) == Set(ids))
        #expect(harness.transport.records.count == 2)

        let second = await harness.kernel.process(request(1))
        #expect(second.plan.calls.count == 2)
        #expect(Set(second.plan.calls.map(\.partnerID)).isDisjoint(with: firstDispatched))
        #expect(second.plan.decisions.filter { $0.decision == .skip(.fresh) }.count == 2)
        #expect(second.plan.decisions.filter { $0.decision == .skip(.deferred) }.count == 1)

        let third = await harness.kernel.process(request(1))
        #expect(third.plan.calls.count == 1)
        #expect(third.plan.decisions.filter { $0.decision == .skip(.deferred) }.isEmpty)

        let record = try #require(try await harness.record(1))
        #expect(record.partners.count == 5)
        #expect(Set(record.partners.values.map(\.uid)) == Set(ids.map { "uid-\($0)" }))
        #expect(harness.transport.records.count == 5)
        // Deferred partners were neither counted in the rate limiter nor called twice.
        for id in ids { #expect(try await harness.rateCount(id, 1) == 1) }
    }

    @Test("Partners skipped on the way (rate limit) don't use up the request's cap")
    func capCountsOnlyDispatched() async throws {
        let harness = try Harness(
            partners: partners(["a", "b", "c", "d", "e"]) { partner in
                if partner.id == "a" || partner.id == "b" { partner.policy.rateLimit = RateLimitPolicy(calls: 0) }
            },
            configuration: PullSyncConfiguration(maxCallsPerRequest: 2)
        )

        var bothLimitedFirst = 0
        for n in 1...30 {
            let report = await harness.kernel.process(request(n, issued: true))
            #expect(report.plan.calls.count == 2)
            #expect(Set(report.plan.calls.map(\.partnerID)).isSubset(of: ["c", "d", "e"]))
            #expect(report.plan.decisions.count == 5)
            let limited = report.plan.decisions.filter { $0.decision == .skip(.rateLimited) }.map(\.partnerID)
            #expect(Set(limited).isSubset(of: ["a", "b"]))
            if limited.count == 2 { bothLimitedFirst += 1 }
        }
        // The fair order put both limited partners ahead of the cap at least once.
        #expect(bothLimitedFirst > 0)
    }

    @Test("Without a cap every eligible partner is dispatched")
    func noCapByDefault() async throws {
        let harness = try Harness(partners: partners(count: 8))
        try await harness.seed(1)
        #expect(PullSyncConfiguration().maxCallsPerRequest == nil)

        let report = await harness.kernel.process(request(1))

        #expect(report.plan.calls.count == 8)
        #expect(harness.transport.records.count == 8)
    }
}
