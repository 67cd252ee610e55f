import Synchronization

/// The (partner, EC) pairs with a call in flight in this process, so that two page views of
/// one browser in quick succession don't both ask the partner. (Across edge nodes a shared
/// store's lease does the same.) Keyed by partner id, not index, so that a reloaded registry
/// (partners in another order) shares it with the calls still in flight on the old one.
final class InFlightCalls: Sendable {
    private struct Key: Hashable {
        var partner: String
        // A slice of the EC's own string: keying by it allocates nothing (a `String` of the
        // 64-byte hash was two allocations per call, at its start and its end).
        var ecHash: Substring
    }

    private let keys = Mutex(Set<Key>())

    /// Marks the pair in flight; `false` when it already was.
    func begin(_ partner: String, ecHash: Substring) -> Bool {
        keys.withLock { $0.insert(Key(partner: partner, ecHash: ecHash)).inserted }
    }

    func end(_ partner: String, ecHash: Substring) {
        _ = keys.withLock { $0.remove(Key(partner: partner, ecHash: ecHash)) }
    }

    func contains(_ partner: String, ecHash: Substring) -> Bool {
        keys.withLock { $0.contains(Key(partner: partner, ecHash: ecHash)) }
    }

    var count: Int { keys.withLock { $0.count } }
}
