/// Counts, per partner, the calls each new EC's first organic request made to it, and which partner
/// went first: the fairness measure's arithmetic.
struct FirstCallTally {
    let partnerIDs: [String]
    private(set) var calls: [String: Int] = [:]
    private(set) var first: [String: Int] = [:]
    private(set) var requests = 0

    init(partnerIDs: [String]) { self.partnerIDs = partnerIDs }

    /// One EC's first request, its calls in the order they were made.
    mutating func record(_ order: [String]) {
        requests += 1
        for id in order { calls[id, default: 0] += 1 }
        if let head = order.first { first[head, default: 0] += 1 }
    }

    /// Each partner's count divided by the mean count, in `partnerIDs` order.
    static func relativeToMean(_ counts: [String: Int], partnerIDs: [String]) -> [Double] {
        let values = partnerIDs.map { Double(counts[$0, default: 0]) }
        let mean = values.reduce(0, +) / Double(max(1, values.count))
        return values.map { mean > 0 ? $0 / mean : 0 }
    }

    /// The largest distance from the mean, as a fraction of the mean (0.1 is ±10 %).
    static func worstDeviation(_ counts: [String: Int], partnerIDs: [String]) -> Double {
        relativeToMean(counts, partnerIDs: partnerIDs).map { abs($0 - 1) }.max() ?? 0
    }
}

/// The order the fairness measure compares against: one global rotation per hour, the same for
/// every EC within the hour.
struct HourlyRotation {
    let partnerIDs: [String]

    func order(hour: Int) -> [String] {
        let shift = hour % partnerIDs.count
        return Array(partnerIDs[shift...] + partnerIDs[..<shift])
    }
}
