import InMemoryLogging
import Logging
import PullSyncKernel
import Testing

@Suite("Throttled warnings")
struct ThrottledWarningTests {
    @Test("The first warning is logged; repeats within the interval are counted into the next line")
    func throttles() async throws {
        let handler = InMemoryLogHandler()
        let logger = Logger(label: "t", factory: { _ in handler })
        let warning = ThrottledWarning(interval: .milliseconds(300))

        for _ in 0..<50 { warning.warning("store down", metadata: ["error": "x"], to: logger) }
        #expect(handler.entries.count == 1)
        #expect(handler.entries.first?.metadata["suppressed_since_last"] == nil)

        try await Task.sleep(for: .milliseconds(350))
        warning.warning("store down", metadata: ["error": "x"], to: logger)

        #expect(handler.entries.count == 2)
        #expect(handler.entries.last?.metadata["suppressed_since_last"] == "49")
    }
}
