import Synchronization

/// EC hashes this process saw something of recently, bounded (the oldest leave first). The
/// dispatcher keeps two:
///
/// - ECs it issued, so that a browser's next page view counts as known even when it arrives
///   before the first one's root entry was written (or when the queue turned the first one away);
/// - ECs it withdrew (or found withdrawn), so that a denied browser's every page view doesn't
///   cost a store read.
///
/// Only hashes the process minted or the graph confirmed go in, so spoofed IDs can't fill them.
/// They are kept as ``ECKey``s: a full table holds no strings (each kept hash used to keep its
/// whole EC alive), and an insert hashes two integers, not the EC's text twice.
final class RecentECHashes: Sendable {
    private struct State {
        var members: Set<ECKey> = []
        var ring: [ECKey?]
        var next = 0
    }

    private let state: Mutex<State>

    init(capacity: Int) {
        self.state = Mutex(State(ring: Array(repeating: nil, count: max(1, capacity))))
    }

    func insert(_ hash: ECHash) {
        let key = ECKey(ecHash: hash)
        state.withLock { state in
            guard state.members.insert(key).inserted else { return }
            if let evicted = state.ring[state.next] { state.members.remove(evicted) }
            state.ring[state.next] = key
            state.next = (state.next + 1) % state.ring.count
        }
    }

    func contains(_ hash: ECHash) -> Bool {
        let key = ECKey(ecHash: hash)
        return state.withLock { $0.members.contains(key) }
    }
}
