import PullSync
import Testing

/// What every rate limiter must do, run against each store.
@Suite("Rate limiter, on every store")
struct RateLimiterStoreTests {
    static let policy = RateLimitPolicy(calls: 3, window: .seconds(3600))

    @Test("Admits exactly `calls` in the window, then slides", arguments: StoreKind.available)
    func slidingWindow(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            let limiter = opened.store
            let key = RateLimitRequest(key: pullKey("a", "1"), policy: Self.policy)
            var admitted: [Bool] = []
            for minute in 0..<5 {
                admitted += try await limiter.acquire([key], at: t0 + .seconds(60 * minute))
            }
            #expect(admitted == [true, true, true, false, false])
            #expect(
                try await limiter.count(key: pullKey("a", "1"), window: .seconds(3600), at: t0 + .seconds(300))
                    == 3
            )

            // The first call leaves the window exactly one hour after it was made.
            #expect(try await limiter.acquire([key], at: t0 + .seconds(3600) - .nanoseconds(1)) == [false])
            #expect(try await limiter.acquire([key], at: t0 + .seconds(3600)) == [true])
            #expect(try await limiter.acquire([key], at: t0 + .seconds(3601)) == [false])
            #expect(
                try await limiter.count(key: pullKey("a", "1"), window: .seconds(3600), at: t0 + .seconds(3601))
                    == 3
            )
        }
    }

    @Test("A batch decides each key on its own, in one call", arguments: StoreKind.available)
    func batches(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            let limiter = opened.store
            let one = RateLimitPolicy(calls: 1, window: .seconds(60))
            _ = try await limiter.acquire([RateLimitRequest(key: pullKey("b", "1"), policy: one)], at: t0)
            let answer = try await limiter.acquire(
                [
                    RateLimitRequest(key: pullKey("a", "1"), policy: one),
                    RateLimitRequest(key: pullKey("b", "1"), policy: one),
                    RateLimitRequest(key: pullKey("c", "1"), policy: RateLimitPolicy(calls: 2, window: .seconds(60))),
                ],
                at: t0 + .seconds(1)
            )
            #expect(answer == [true, false, true])
            #expect(try await limiter.acquire([], at: t0) == [])
        }
    }

    @Test("A batch of 400 keys (more than one SQL statement binds) decides each", arguments: StoreKind.available)
    func largeBatch(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            let limiter = opened.store
            let one = RateLimitPolicy(calls: 1, window: .seconds(60))
            let requests = (0..<400).map { RateLimitRequest(key: pullKey("p\($0)", "1"), policy: one) }
            let early = try await limiter.acquire([requests[7], requests[390]], at: t0)
            let answer = try await limiter.acquire(requests, at: t0 + .seconds(1))
            #expect(early == [true, true])
            #expect(answer.indices.filter { !answer[$0] } == [7, 390])
            let counted = try await limiter.count(key: pullKey("p399", "1"), window: .seconds(60), at: t0 + .seconds(1))
            #expect(counted == 1)
        }
    }

    @Test(
        "200 concurrent acquisitions of one key with a limit of 10: exactly 10 admitted",
        arguments: StoreKind.available
    )
    func exactUnderConcurrency(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            let limiter = opened.store
            let request = RateLimitRequest(
                key: pullKey("hot", "1"),
                policy: RateLimitPolicy(calls: 10, window: .seconds(3600))
            )
            let admitted = try await withThrowingTaskGroup(of: Bool.self) { group in
                for n in 0..<200 {
                    group.addTask {
                        // Some batches also carry other keys, in both orders, as real requests do.
                        let other = RateLimitRequest(key: pullKey("other\(n % 4)", "1"), policy: request.policy)
                        let batch = n.isMultiple(of: 2) ? [request, other] : [other, request]
                        let answer = try await limiter.acquire(batch, at: t0 + .milliseconds(n))
                        return n.isMultiple(of: 2) ? answer[0] : answer[1]
                    }
                }
                var count = 0
                for try await admitted in group where admitted { count += 1 }
                return count
            }
            #expect(admitted == 10)
            #expect(
                try await limiter.count(key: pullKey("hot", "1"), window: .seconds(3600), at: t0 + .seconds(1))
                    == 10
            )
        }
    }

    @Test(
        "A check made at an earlier time than calls already counted counts them: no window holds more than the limit",
        arguments: StoreKind.available
    )
    func laterCallsCount(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            let limiter = opened.store
            let request = RateLimitRequest(key: pullKey("late", "1"), policy: RateLimitPolicy(calls: 2, window: .seconds(60)))
            var answers: [Bool] = []
            for seconds in [10, 20] { answers += try await limiter.acquire([request], at: t0 + .seconds(seconds)) }
            // Its time was taken before the others' turns: within 60 s of both, so refused.
            answers += try await limiter.acquire([request], at: t0 + .seconds(5))
            // Once the window has passed the first, one more fits.
            answers += try await limiter.acquire([request], at: t0 + .seconds(71))
            #expect(answers == [true, true, false, true])
        }
    }

    @Test("Expired rows are swept; live ones stay", arguments: StoreKind.persistent)
    func sweep(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            let limiter = opened.store
            let short = RateLimitPolicy(calls: 5, window: .seconds(60))
            _ = try await limiter.acquire([RateLimitRequest(key: pullKey("old", "1"), policy: short)], at: t0)
            _ = try await limiter.acquire(
                [RateLimitRequest(key: pullKey("live", "1"), policy: short)],
                at: t0 + .seconds(100)
            )

            let removed = try await sweepExpired(opened, at: t0 + .seconds(120))

            #expect(removed == 1)
            #expect(
                try await limiter.count(key: pullKey("live", "1"), window: .seconds(60), at: t0 + .seconds(120))
                    == 1
            )
        }
    }
}
