/// A set of partners' registry ordinals, drawn from in a random order: a request's candidate
/// partners. The first 64 ordinals take no allocation, so that deciding for a registry of up
/// to 64 partners makes no array of candidates; larger registries take one, at the first
/// ordinal past 64.
struct OrdinalSet: Sequence {
    private var low: UInt64 = 0
    /// Ordinals from 64 on, 64 to a word; made at the first of them, for every ordinal below
    /// `capacity`.
    private var high: [UInt64] = []
    private let capacity: Int
    /// How many ordinals the set holds.
    private(set) var count = 0

    /// An empty set for ordinals below `capacity`.
    init(capacity: Int) {
        self.capacity = capacity
    }

    var isEmpty: Bool { count == 0 }

    /// Where `ordinal`'s bit is: its word in ``high`` (`nil` for ``low``) and its mask.
    private static func place(_ ordinal: Int) -> (word: Int?, mask: UInt64) {
        (ordinal < 64 ? nil : ordinal / 64 - 1, 1 << (ordinal % 64))
    }

    mutating func insert(_ ordinal: Int) {
        precondition(ordinal >= 0 && ordinal < capacity)
        guard !contains(ordinal) else { return }
        let (word, mask) = Self.place(ordinal)
        if let word {
            if high.isEmpty { high = Array(repeating: 0, count: (capacity - 1) / 64) }
            high[word] |= mask
        } else {
            low |= mask
        }
        count += 1
    }

    func contains(_ ordinal: Int) -> Bool {
        guard ordinal >= 0 else { return false }
        let (word, mask) = Self.place(ordinal)
        guard let word else { return low & mask != 0 }
        return word < high.count && high[word] & mask != 0
    }

    /// Removes `ordinal`; whether it was there.
    @discardableResult
    mutating func remove(_ ordinal: Int) -> Bool {
        guard contains(ordinal) else { return false }
        let (word, mask) = Self.place(ordinal)
        if let word { high[word] &= ~mask } else { low &= ~mask }
        count -= 1
        return true
    }

    /// Takes out a member drawn uniformly from `random`; `nil` when the set is empty. Drawing
    /// until it is empty gives every order of the members with equal probability.
    mutating func removeRandom(using random: some RandomSource) -> Int? {
        guard count > 0 else { return nil }
        var rank = random.next(below: count)
        var base = 0
        var word = low
        var nextWord = 0
        while rank >= word.nonzeroBitCount {
            rank -= word.nonzeroBitCount
            word = high[nextWord]
            nextWord += 1
            base += 64
        }
        // Clear the lower set bits up to the one ranked.
        for _ in 0..<rank { word &= word - 1 }
        let ordinal = base + word.trailingZeroBitCount
        remove(ordinal)
        return ordinal
    }

    mutating func removeAll() {
        self = OrdinalSet(capacity: capacity)
    }

    /// The members, smallest first.
    func makeIterator() -> Iterator {
        Iterator(word: low, high: high)
    }

    struct Iterator: IteratorProtocol {
        fileprivate var word: UInt64
        fileprivate let high: [UInt64]
        fileprivate var base = 0
        fileprivate var nextWord = 0

        mutating func next() -> Int? {
            while word == 0 {
                guard nextWord < high.count else { return nil }
                word = high[nextWord]
                nextWord += 1
                base += 64
            }
            let ordinal = base + word.trailingZeroBitCount
            word &= word - 1
            return ordinal
        }
    }
}
