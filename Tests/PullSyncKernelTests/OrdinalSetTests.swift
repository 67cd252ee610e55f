import PullSyncTesting
import Testing

@testable import PullSyncKernel

/// The set a request's candidate partners are kept and drawn from, by registry ordinal.
@Suite struct OrdinalSetTests {
    @Test(
        "Inserts, finds and removes ordinals on both sides of 64; lists them smallest first",
        arguments: [10, 64, 65, 300]
    )
    func membership(capacity: Int) {
        var set = OrdinalSet(capacity: capacity)
        let members = [0, 3, 9, 63, 64, 127, 128, 299].filter { $0 < capacity }
        for ordinal in members.reversed() { set.insert(ordinal) }
        set.insert(members[0])
        #expect(set.count == members.count)
        #expect(Array(set) == members)
        #expect(members.allSatisfy(set.contains))
        #expect(![1, 62, 65, 200].contains(where: set.contains))
        #expect(!set.contains(capacity + 64))

        let removed = set.remove(members.last!)
        let removedAgain = set.remove(members.last!)
        #expect(removed && !removedAgain)
        #expect(Array(set) == members.dropLast())
        set.removeAll()
        #expect(set.isEmpty && Array(set).isEmpty)
    }

    @Test("Drawing until empty takes every member once", arguments: [7, 100])
    func drawsEveryMemberOnce(capacity: Int) {
        var set = OrdinalSet(capacity: capacity)
        for ordinal in stride(from: 0, to: capacity, by: 2) { set.insert(ordinal) }
        let random = SeededRandomSource(seed: 11)
        var drawn: [Int] = []
        while let ordinal = set.removeRandom(using: random) { drawn.append(ordinal) }
        #expect(drawn.sorted() == Array(stride(from: 0, to: capacity, by: 2)))
        #expect(drawn != drawn.sorted(), "a random order, not the ordinals' order")
        #expect(set.isEmpty)
    }

    @Test("Every order of three members is drawn about as often (6,000 draws, within ±10 % of 1,000)")
    func ordersAreUniform() {
        let random = SeededRandomSource(seed: 2026)
        var counts: [[Int]: Int] = [:]
        for _ in 0..<6_000 {
            var set = OrdinalSet(capacity: 80)
            for ordinal in [2, 40, 70] { set.insert(ordinal) }
            var order: [Int] = []
            while let ordinal = set.removeRandom(using: random) { order.append(ordinal) }
            counts[order, default: 0] += 1
        }
        #expect(counts.count == 6)
        for (order, count) in counts { #expect(abs(count - 1_000) <= 100, "\(order) drawn \(count) times") }
    }
}
