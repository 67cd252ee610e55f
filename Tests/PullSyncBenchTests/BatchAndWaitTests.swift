import PullSyncKernel
import Synchronization
import Testing

@testable import PullSyncBench

@Suite struct BatchAndWaitTests {
    @Test func aBatchStartsOnlyWhenTheWholePreviousOneHasEnded() async {
        let events = Mutex<[String]>([])
        await BatchAndWait.run(Array(0..<7), concurrency: 3) { item in
            events.withLock { $0.append("start \(item)") }
            // Later items in a batch end first, so a sliding window would start the next one early.
            for _ in 0..<(10 - item) { await Task.yield() }
            events.withLock { $0.append("end \(item)") }
        }
        let log = events.withLock { $0 }
        #expect(log.count == 14)
        for (batch, next) in [(0..<3, 3..<6), (3..<6, 6..<7)] {
            let lastEnd = batch.map { log.firstIndex(of: "end \($0)")! }.max()!
            let firstStart = next.map { log.firstIndex(of: "start \($0)")! }.min()!
            #expect(lastEnd < firstStart)
        }
        var running = 0
        var peak = 0
        for event in log {
            running += event.hasPrefix("start") ? 1 : -1
            peak = max(peak, running)
        }
        #expect(peak <= 3)
    }

    @Test func noItemsIsNothingToDo() async {
        let calls = Atomic(0)
        await BatchAndWait.run([Int](), concurrency: 3) { _ in calls.add(1, ordering: .relaxed) }
        #expect(calls.load(ordering: .relaxed) == 0)
    }
}

@Suite struct FirstCallTallyTests {
    @Test func countsCallsAndFirstPlacesAndTheirDistanceFromTheMean() {
        var tally = FirstCallTally(partnerIDs: ["a", "b", "c", "d"])
        tally.record(["a", "b"])
        tally.record(["b", "c"])
        tally.record(["c", "a"])
        tally.record([])
        #expect(tally.requests == 4)
        #expect(tally.calls == ["a": 2, "b": 2, "c": 2])
        #expect(tally.first == ["a": 1, "b": 1, "c": 1])
        // Mean 1.5: a, b and c are at 4/3 of it, d (never called) at 0.
        let relative = FirstCallTally.relativeToMean(tally.calls, partnerIDs: tally.partnerIDs)
        #expect(relative.map { ($0 * 1000).rounded() } == [1333, 1333, 1333, 0])
        #expect(FirstCallTally.worstDeviation(tally.calls, partnerIDs: tally.partnerIDs) == 1)
    }

    @Test func anHourlyRotationGivesTheSamePartnersEveryCallWithinTheHour() {
        let rotation = HourlyRotation(partnerIDs: (0..<10).map { "p\($0)" })
        #expect(rotation.order(hour: 0).prefix(3) == ["p0", "p1", "p2"])
        #expect(rotation.order(hour: 1).prefix(3) == ["p1", "p2", "p3"])
        #expect(rotation.order(hour: 11) == rotation.order(hour: 1))
        var tally = FirstCallTally(partnerIDs: rotation.partnerIDs)
        for _ in 0..<100 { tally.record(Array(rotation.order(hour: 0).prefix(3))) }
        #expect(tally.calls.keys.sorted() == ["p0", "p1", "p2"])
        #expect(FirstCallTally.worstDeviation(tally.calls, partnerIDs: tally.partnerIDs) > 2)
    }
}

@Suite struct StatisticsTests {
    @Test func percentilesAreNearestRank() {
        let values = Array(1...100).map(Double.init)
        #expect(Statistics.percentile(values, 0.5) == 50)
        #expect(Statistics.percentile(values, 0.99) == 99)
        #expect(Statistics.percentile(values, 1) == 100)
        #expect(Statistics.percentile([Double](), 0.5) == 0)
    }

    @Test func medians() {
        #expect(Statistics.median([3, 1, 2]) == 2)
        #expect(Statistics.median([4, 1, 2, 3]) == 2.5)
    }

    @Test func theRegistryOrderSourceAlwaysDrawsTheFirstLeft() {
        let source = RegistryOrder()
        #expect((1...16).map { source.next(below: $0) } == Array(repeating: 0, count: 16))
    }
}
