import MetricsTestKit
import PullSyncConsent
import PullSyncKernel
import PullSyncStorage
import PullSyncTesting
import Testing

/// Spec "Behaviour" 3: key `pull:{partner}:{ec_hash}`, a true one-hour sliding window,
/// 10 calls per key per hour by default, exact under concurrency.
@Suite("Rate limit")
struct RateLimiterTests {
    @Test("Ten calls in an hour are admitted, the eleventh is rate_limited, and an hour later one is admitted again")
    func defaultLimit() async throws {
        let harness = try Harness(partners: partners(["a"]))
        try await harness.seed(1)
        let start = harness.clock.now()

        for minute in 0..<10 {
            harness.clock.set(start + .seconds(60 * minute))
            let report = await harness.kernel.process(request(1))
            #expect(report.plan.decision(for: "a") == .dispatch, "request \(minute + 1)")
        }
        harness.clock.set(start + .seconds(600))
        let eleventh = await harness.kernel.process(request(1))
        #expect(eleventh.plan.decision(for: "a") == .skip(.rateLimited))
        #expect(harness.calls("a") == 10)
        #expect(harness.decisions("a", "rate_limited") == 1)
        #expect(harness.decisions("a", "dispatch") == 10)

        // Just before the first call leaves the window: still limited.
        harness.clock.set(start + .seconds(3600) - .nanoseconds(1))
        #expect(await harness.kernel.process(request(1)).plan.decision(for: "a") == .skip(.rateLimited))
        // The first call is exactly one hour old: it no longer counts.
        harness.clock.set(start + .seconds(3600))
        #expect(await harness.kernel.process(request(1)).plan.decision(for: "a") == .dispatch)
        #expect(await harness.kernel.process(request(1)).plan.decision(for: "a") == .skip(.rateLimited))
        #expect(harness.calls("a") == 11)
    }

    @Test("The window slides: calls spread over the hour expire one by one")
    func slidingWindow() async throws {
        let harness = try Harness(partners: partners(["a"]))
        try await harness.seed(1)
        let start = harness.clock.now()
        let spacing = Duration.seconds(360)

        // Ten calls, six minutes apart, fill the hour.
        for index in 0..<10 {
            harness.clock.set(start + spacing * index)
            #expect(await harness.kernel.process(request(1)).plan.decision(for: "a") == .dispatch)
        }
        // From then on, each six minutes exactly one slot frees up.
        for index in 0..<10 {
            let expiry = start + spacing * index + .seconds(3600)
            harness.clock.set(expiry - .seconds(1))
            let before = await harness.kernel.process(request(1))
            harness.clock.set(expiry)
            let first = await harness.kernel.process(request(1))
            let second = await harness.kernel.process(request(1))
            #expect(before.plan.decision(for: "a") == .skip(.rateLimited), "before expiry \(index)")
            #expect(first.plan.decision(for: "a") == .dispatch, "at expiry \(index)")
            #expect(second.plan.decision(for: "a") == .skip(.rateLimited), "after expiry \(index)")
        }
        #expect(harness.calls("a") == 20)
    }

    @Test("The limit is per partner and per EC hash")
    func keyedByPartnerAndEC() async throws {
        let harness = try Harness(
            partners: [
                TestPartners.partner("tight", rateLimit: RateLimitPolicy(calls: 1, window: .seconds(3600))),
                TestPartners.partner("loose"),
            ]
        )
        try await harness.seed(1)
        try await harness.seed(2)

        let first = await harness.kernel.process(request(1))
        let second = await harness.kernel.process(request(1))
        let otherEC = await harness.kernel.process(request(2))

        #expect(first.plan.decision(for: "tight") == .dispatch)
        #expect(second.plan.decision(for: "tight") == .skip(.rateLimited))
        #expect(second.plan.decision(for: "loose") == .dispatch)
        #expect(otherEC.plan.decision(for: "tight") == .dispatch)
        #expect(try await harness.rateCount("tight", 1) == 1)
        #expect(try await harness.rateCount("loose", 1) == 2)
        #expect(try await harness.rateCount("tight", 2) == 1)
    }

    @Test("Concurrent requests never overshoot the limit")
    func concurrentRequests() async throws {
        let harness = try Harness(partners: partners(["a"]))
        try await harness.seed(1)
        let kernel = harness.kernel

        let dispatched = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<40 {
                group.addTask { await kernel.process(request(1)).plan.calls.count }
            }
            return await group.reduce(0, +)
        }
        // Concurrent views of one EC mostly meet the first call in flight; then views one by one.
        var total = dispatched
        for _ in 0..<40 { total += await kernel.process(request(1)).plan.calls.count }

        #expect(dispatched <= 10)
        #expect(total == 10)
        #expect(harness.calls("a") == 10)
        #expect(try await harness.rateCount("a", 1) == 10)
    }

    @Test("The limiter's check-and-count is exact under concurrent acquires")
    func concurrentAcquires() async throws {
        let limiter = InMemoryRateLimiter()
        let now = Timestamp(secondsSinceEpoch: 1_000)
        let policy = RateLimitPolicy(calls: 10, window: .seconds(3600))
        let admitted = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<200 {
                group.addTask {
                    try await limiter.acquire([RateLimitRequest(key: pullKey("a", "x"), policy: policy)], at: now)
                        .filter { $0 }.count
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(admitted == 10)
    }

    @Test("Several edge nodes sharing one store never overshoot the limit together")
    func sharedStoreAcrossNodes() async throws {
        let harness = try Harness(partners: partners(["a"]))
        try await harness.seed(1)
        let nodes = (0..<3).map { node in
            PullKernel(
                registry: harness.kernel.registry,
                graph: harness.graph,
                rateLimiter: harness.rateLimiter,
                transport: harness.transport,
                consent: IABConsentRules(),
                clock: harness.clock,
                random: SeededRandomSource(seed: UInt64(node))
            )
        }

        let dispatched = await withTaskGroup(of: Int.self) { group in
            for index in 0..<30 {
                let node = nodes[index % nodes.count]
                group.addTask { await node.process(request(1)).plan.calls.count }
            }
            return await group.reduce(0, +)
        }
        var total = dispatched
        for index in 0..<60 { total += await nodes[index % nodes.count].process(request(1)).plan.calls.count }

        #expect(dispatched <= 10)
        #expect(total == 10)
        #expect(harness.calls("a") == 10)
    }

    @Test("InMemoryRateLimiter admits per key in (now - window, now] and counts without taking")
    func inMemoryLimiter() async throws {
        let limiter = InMemoryRateLimiter()
        let policy = RateLimitPolicy(calls: 2, window: .seconds(10))
        let a = RateLimitRequest(key: pullKey("a", "x"), policy: policy)
        let b = RateLimitRequest(key: pullKey("b", "x"), policy: policy)
        let t0 = Timestamp(secondsSinceEpoch: 100)

        #expect(try await limiter.acquire([a, b, a, a], at: t0) == [true, true, true, false])
        #expect(try await limiter.count(key: a.key, window: policy.window, at: t0) == 2)
        #expect(try await limiter.count(key: a.key, window: policy.window, at: t0) == 2)
        #expect(try await limiter.acquire([a], at: t0 + .seconds(10) - .nanoseconds(1)) == [false])
        #expect(try await limiter.count(key: a.key, window: policy.window, at: t0 + .seconds(10)) == 0)
        #expect(try await limiter.acquire([a, a, a], at: t0 + .seconds(10)) == [true, true, false])
        #expect(limiter.purge(before: t0 + .seconds(5)) == 1)
        #expect(try await limiter.count(key: b.key, window: .seconds(3600), at: t0 + .seconds(10)) == 0)
    }

    @Test("The kernel's key is pull:{partner}:{ec_hash}")
    func key() {
        #expect(RateLimitKey(partnerID: "acme", ecHash: hash(7)).description == "pull:acme:\(hash(7))")
        // A key of a slice of the EC is the key of the same text.
        let ec = "\(hash(7)).AbC123"
        let sliced = RateLimitKey(partnerID: "acme", ecHash: ec.prefix(64))
        #expect(sliced == RateLimitKey(partnerID: "acme", ecHash: hash(7)))
        #expect(sliced.hashValue == RateLimitKey(partnerID: "acme", ecHash: hash(7)).hashValue)
        #expect(RateLimitPolicy() == RateLimitPolicy(calls: 10, window: .seconds(3600)))
    }
}
