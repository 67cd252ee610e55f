public import PullSyncKernel

/// The identity graph and rate limiter behind a store URL.
public struct PullSyncStore: Sendable {
    public var graph: any IdentityGraph
    public var rateLimiter: any RateLimiter
    /// The EC-issuing secret kept in the store, created on first use, so that restarts and
    /// every node sharing the store agree (used when `PULLSYNC_EC_SECRET` is not set).
    public var ecSecret: @Sendable () async throws -> [UInt8]

    public init(
        graph: any IdentityGraph,
        rateLimiter: any RateLimiter,
        ecSecret: @escaping @Sendable () async throws -> [UInt8]
    ) {
        self.graph = graph
        self.rateLimiter = rateLimiter
        self.ecSecret = ecSecret
    }

    /// A bad or unsupported store URL.
    public struct URLError: Error, Sendable, Hashable, CustomStringConvertible {
        public var description: String
    }

    /// Opens the store `url` names: `memory:` (process memory, lost on exit).
    ///
    /// `sqlite:PATH` and `postgres://…` are recognised and refused with an error saying so,
    /// until those stores ship.
    public static func open(_ url: String) throws(URLError) -> PullSyncStore {
        if url == "memory:" || url == "memory" {
            // Lives as long as the process: one random secret per store.
            var generator = SystemRandomNumberGenerator()
            let secret = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
            return PullSyncStore(
                graph: InMemoryIdentityGraph(),
                rateLimiter: InMemoryRateLimiter(),
                ecSecret: { secret }
            )
        }
        if url.hasPrefix("sqlite:") || url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            let scheme = url.prefix { $0 != ":" }
            throw URLError(description: "store '\(scheme):' is not available in this build; use memory:")
        }
        // Never echo a password: drop anything between "://" and "@".
        var shown = url
        if let scheme = shown.range(of: "://"), let at = shown[scheme.upperBound...].firstIndex(of: "@") {
            shown.replaceSubrange(scheme.upperBound..<at, with: "…")
        }
        throw URLError(
            description: "unknown store URL '\(shown)'; expected memory:, sqlite:PATH or postgres://USER@HOST/DB"
        )
    }
}
