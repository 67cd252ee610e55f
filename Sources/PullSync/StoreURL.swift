public import PullSyncKernel

/// The identity graph and rate limiter behind a store URL.
public struct PullSyncStore: Sendable {
    public var graph: any IdentityGraph
    public var rateLimiter: any RateLimiter

    public init(graph: any IdentityGraph, rateLimiter: any RateLimiter) {
        self.graph = graph
        self.rateLimiter = rateLimiter
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
            return PullSyncStore(graph: InMemoryIdentityGraph(), rateLimiter: InMemoryRateLimiter())
        }
        if url.hasPrefix("sqlite:") || url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            let scheme = url.prefix { $0 != ":" }
            throw URLError(description: "store '\(scheme):' is not available in this build; use memory:")
        }
        throw URLError(
            description: "unknown store URL '\(url)'; expected memory:, sqlite:PATH or postgres://USER@HOST/DB"
        )
    }
}
