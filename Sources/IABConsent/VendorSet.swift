/// A set of IAB TCF vendor IDs (1 to 65,535) as a TC string carries it: a bit field, or
/// ranges of IDs. Lookups are O(1) for a bit field and O(log n) for ranges, and memory is
/// bounded by the encoding (at most 8 KiB of bits, or 4,095 ranges).
public struct VendorSet: Sendable, Equatable {
    private enum Storage: Equatable {
        /// Bit `id - 1` set for each member.
        case bits([UInt64])
        /// Sorted, merged, non-adjacent ranges.
        case ranges([ClosedRange<Int>])
    }

    /// The section's `MaxVendorId`: the largest ID the encoding covers (0 when empty).
    public let maxVendorID: Int
    private let storage: Storage

    /// The empty set.
    public static let empty = VendorSet(maxVendorID: 0, ranges: [])

    /// The set of `ids` (for tests and hosts building signals; decoding never needs it).
    public init(_ ids: some Sequence<Int>) {
        let sorted = ids.filter { $0 >= 1 && $0 <= 65_535 }.sorted()
        self.init(maxVendorID: sorted.last ?? 0, ranges: sorted.map { $0...$0 })
    }

    /// From a bit field: bit `i` of `bits` (from the most significant bit of word 0) is vendor `i + 1`.
    init(maxVendorID: Int, bits: [UInt64]) {
        self.maxVendorID = maxVendorID
        self.storage = .bits(bits)
    }

    /// From range entries in any order, overlapping or repeated (real TC strings repeat them).
    init(maxVendorID: Int, ranges: [ClosedRange<Int>]) {
        self.maxVendorID = maxVendorID
        var merged: [ClosedRange<Int>] = []
        for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = merged.last, range.lowerBound <= last.upperBound + 1 {
                merged[merged.count - 1] = last.lowerBound...max(last.upperBound, range.upperBound)
            } else {
                merged.append(range)
            }
        }
        self.storage = .ranges(merged)
    }

    /// Whether `id` is in the set.
    public func contains(_ id: Int) -> Bool {
        guard id >= 1 else { return false }
        switch storage {
        case .bits(let words):
            let index = id - 1
            guard index / 64 < words.count else { return false }
            return words[index / 64] & (1 << UInt64(63 - index % 64)) != 0
        case .ranges(let ranges):
            var low = 0
            var high = ranges.count
            while low < high {
                let middle = (low + high) / 2
                if ranges[middle].upperBound < id { low = middle + 1 } else { high = middle }
            }
            return low < ranges.count && ranges[low].contains(id)
        }
    }

    /// Every member, ascending (at most 65,535 of them).
    public var ids: [Int] {
        switch storage {
        case .bits(let words):
            guard maxVendorID >= 1, !words.isEmpty else { return [] }
            return (1...min(maxVendorID, words.count * 64)).filter { contains($0) }
        case .ranges(let ranges):
            return ranges.flatMap { Array($0) }
        }
    }

    /// Two sets are equal when they hold the same IDs, however they were encoded.
    public static func == (lhs: VendorSet, rhs: VendorSet) -> Bool {
        lhs.storage == rhs.storage || lhs.ids == rhs.ids
    }

    /// Whether no vendor is in the set.
    public var isEmpty: Bool {
        switch storage {
        case .bits(let words): words.allSatisfy { $0 == 0 }
        case .ranges(let ranges): ranges.isEmpty
        }
    }
}
