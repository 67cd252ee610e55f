import PullSyncTesting
import Testing

@testable import PullSync

@Suite("Backfill pacing and checkpoint cursor")
struct BackfillPacingTests {
    @Test("Starts are spaced by the interval from the previous actual start, however late each wake-up is")
    func pacerSpacing() {
        var pacer = Pacer(interval: .milliseconds(10))  // 100 per second
        var generator = SeededRandomSource(seed: 11)  // the same lateness on every run
        var now = ContinuousClock.now
        var starts: [ContinuousClock.Instant] = []
        while starts.count < 2_000 {
            if let delay = pacer.delay(at: now) {
                // Wake up when asked, or late by up to 80 ms (a busy machine).
                let late = Bool.random(using: &generator) ? Int64.random(in: 0...80_000, using: &generator) : 0
                now = now + delay + .microseconds(late)
            } else {
                starts.append(now)
                now = now + .microseconds(Int64.random(in: 0...3_000, using: &generator))
            }
        }
        for (earlier, later) in zip(starts, starts.dropFirst()) {
            #expect(later - earlier >= .milliseconds(10))
        }
        var start = 0
        var busiest = 0
        for end in starts.indices {
            while starts[end] - starts[start] >= .seconds(1) { start += 1 }
            busiest = max(busiest, end - start + 1)
        }
        #expect(busiest <= 100)
    }

    @Test("A start asked for after a long pause goes at once")
    func pacerAfterPause() {
        var pacer = Pacer(interval: .seconds(1))
        let start = ContinuousClock.now
        #expect(pacer.delay(at: start) == nil)
        #expect(pacer.delay(at: start + .milliseconds(400)) == .milliseconds(600))
        #expect(pacer.delay(at: start + .seconds(5)) == nil)
        #expect(pacer.delay(at: start + .seconds(5)) == .seconds(1))
    }

    @Test("The cursor advances only past ECs whose every predecessor has finished")
    func frontier() {
        var frontier = Frontier(cursor: "resume-point")
        let a = frontier.assign("a")
        let b = frontier.assign("b")
        let c = frontier.assign("c")
        frontier.complete(b)
        #expect(frontier.cursor == "resume-point")
        frontier.complete(c)
        #expect(frontier.cursor == "resume-point")
        frontier.complete(a)
        #expect(frontier.cursor == "c")
        let d = frontier.assign("d")
        _ = frontier.assign("e")
        frontier.complete(d)
        #expect(frontier.cursor == "d")
    }
}
