import InMemoryLogging
import Logging
import PullSyncKernel
import PullSyncTesting
import Testing

@Suite("Throttled warnings")
struct ThrottledWarningTests {
    @Test("The first warning is logged; repeats within the interval are counted into the next line")
    func throttles() {
        let handler = InMemoryLogHandler()
        let logger = Logger(label: "t", factory: { _ in handler })
        // Time moves only when the test clock is advanced.
        let clock = TestWallClock()
        let warning = ThrottledWarning(interval: .seconds(30), now: clock.continuousNow())

        for _ in 0..<50 { warning.warning("store down", metadata: ["error": "x"], to: logger) }
        #expect(handler.entries.count == 1)
        #expect(handler.entries.first?.metadata["suppressed_since_last"] == nil)

        clock.advance(by: .seconds(29))
        warning.warning("store down", metadata: ["error": "x"], to: logger)
        #expect(handler.entries.count == 1, "still within the interval")

        clock.advance(by: .seconds(1))
        warning.warning("store down", metadata: ["error": "x"], to: logger)

        #expect(handler.entries.count == 2)
        #expect(handler.entries.last?.metadata["suppressed_since_last"] == "50")

        // The count starts again after each line.
        clock.advance(by: .seconds(30))
        warning.warning("store down", metadata: ["error": "x"], to: logger)
        #expect(handler.entries.count == 3)
        #expect(handler.entries.last?.metadata["suppressed_since_last"] == nil)
    }
}
