import PullSyncKernel
import PullSyncStorage
import PullSyncTesting
import Testing

@Suite struct RateLimiterMemoryTests {
    @Test("Keys idle past their window are forgotten by the periodic sweep")
    func idleKeysAreSwept() async throws {
        let limiter = InMemoryRateLimiter(sweepInterval: .seconds(60))
        let t0 = Timestamp(secondsSinceEpoch: 1_000_000)
        let policy = RateLimitPolicy(calls: 10, window: .seconds(3600))
        for n in 0..<2_000 {
            _ = try await limiter.acquire([RateLimitRequest(key: pullKey("k\(n)", "x"), policy: policy)], at: t0)
        }
        #expect(limiter.keyCount == 2_000)
        // Within the window nothing is forgotten, whatever the sweeps.
        _ = try await limiter.acquire(
            [RateLimitRequest(key: pullKey("other", "x"), policy: policy)],
            at: t0 + .seconds(1800)
        )
        #expect(limiter.keyCount == 2_001)
        _ = try await limiter.acquire(
            [RateLimitRequest(key: pullKey("late", "x"), policy: policy)],
            at: t0 + .seconds(3601)
        )
        #expect(limiter.keyCount == 2)
        #expect(try await limiter.count(key: pullKey("k1", "x"), window: .seconds(3600), at: t0 + .seconds(3601)) == 0)
    }
}
