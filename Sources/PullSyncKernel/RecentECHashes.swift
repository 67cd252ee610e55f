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
/// They are kept as ``ECKey``s, in buckets of up to four picked by the key's seeded hash, each
/// bucket's oldest leaving first: an insert or a look-up touches one bucket (one cache line), with
/// no set to hash into and no evicted key to look up and remove (a new browser's page view inserts
/// its EC, and the set's two random accesses showed in overload profiles). There are slots for
/// twice `capacity`: a key stays until four newer ones landed in its bucket, so nearly all of the
/// last `capacity` keys are held, none for long after. The slots are made at the first insert
/// (a table that never gets one, say no EC was ever withdrawn, costs no memory).
final class RecentECHashes: Sendable {
    private struct State {
        /// `buckets * ways` keys once anything was inserted; a bucket's slots are adjacent. An
        /// all-zero key is an empty slot (a real one is all zero with a chance of one in 2^128).
        var keys: [ECKey] = []
        /// Per bucket, the slot its next insert takes (its oldest).
        var next: [UInt8] = []
    }

    private let ways: Int
    /// A power of two, so a bucket is the hash's low bits.
    private let buckets: Int
    private let state: Mutex<State>

    init(capacity: Int) {
        let capacity = max(1, capacity)
        // Small tables are one bucket: exactly the last `capacity` keys.
        ways = min(4, capacity)
        var buckets = 1
        while buckets * ways < (capacity > ways ? 2 * capacity : capacity) { buckets *= 2 }
        self.buckets = buckets
        state = Mutex(State())
    }

    func insert(_ hash: ECHash) {
        let key = ECKey(ecHash: hash)
        let index = bucket(of: key)
        let first = index * ways
        state.withLock { state in
            if state.keys.isEmpty {
                state.keys = Array(repeating: ECKey(first: 0, second: 0), count: buckets * ways)
                state.next = Array(repeating: 0, count: buckets)
            }
            for slot in first..<first + ways where state.keys[slot] == key { return }
            let oldest = Int(state.next[index])
            state.keys[first + oldest] = key
            state.next[index] = UInt8((oldest + 1) % ways)
        }
    }

    func contains(_ hash: ECHash) -> Bool {
        let key = ECKey(ecHash: hash)
        let first = bucket(of: key) * ways
        return state.withLock { state in
            guard !state.keys.isEmpty else { return false }
            for slot in first..<first + ways where state.keys[slot] == key { return true }
            return false
        }
    }

    private func bucket(of key: ECKey) -> Int {
        Int(truncatingIfNeeded: UInt(bitPattern: key.second)) & (buckets - 1)
    }
}
