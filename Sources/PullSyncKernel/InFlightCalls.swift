import Synchronization

/// The (partner, EC) pairs with a call in flight in this process, so that two page views of
/// one browser in quick succession don't both ask the partner. (Across edge nodes a shared
/// store's lease does the same.) Keyed by partner id, not index, so that a reloaded registry
/// (partners in another order) shares it with the calls still in flight on the old one.
final class InFlightCalls: Sendable {
    // Keyed like rate limits: the partner and the EC's hash, which hashes its value worked out
    // once per EC, and is a slice of the EC's own string (allocating nothing).
    private let keys = Mutex(Set<RateLimitKey>())

    /// Marks the pair in flight; `false` when it already was.
    func begin(_ partner: String, ecHash: ECHash) -> Bool {
        keys.withLock { $0.insert(RateLimitKey(partnerID: partner, ecHash: ecHash)).inserted }
    }

    func end(_ partner: String, ecHash: ECHash) {
        _ = keys.withLock { $0.remove(RateLimitKey(partnerID: partner, ecHash: ecHash)) }
    }

    func contains(_ partner: String, ecHash: ECHash) -> Bool {
        keys.withLock { $0.contains(RateLimitKey(partnerID: partner, ecHash: ecHash)) }
    }

    var count: Int { keys.withLock { $0.count } }
}
