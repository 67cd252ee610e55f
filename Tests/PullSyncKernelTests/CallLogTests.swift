import Logging
import PullSyncKernel
import PullSyncTesting
import Testing

/// A call's log line: a failure is a warning at any level up to warning; a call that went well is
/// logged at debug only (and its metadata is built only then).
@Suite("Call log lines")
struct CallLogTests {
    @Test(
        "Which call lines each log level shows",
        arguments: [(Logger.Level.info, false), (.debug, true)]
    )
    func linesByLevel(level: Logger.Level, showsSuccess: Bool) async throws {
        let harness = try Harness(partners: partners(count: 2), logLevel: level)
        harness.transport.script(TestPartners.host("p0"), .uid("u0"))
        harness.transport.script(TestPartners.host("p1"), .status(500))
        try await harness.seed(1)

        let report = await harness.kernel.process(request(1))

        #expect(report.results.count == 2)
        let lines = harness.logs.entries.filter { $0.message.description.hasPrefix("pull call") }
        let failed = lines.filter { $0.message.description == "pull call failed" }
        #expect(failed.count == 1)
        #expect(failed.first?.level == .warning)
        #expect(failed.first?.metadata["partner"]?.description == "p1")
        #expect(failed.first?.metadata["outcome"]?.description == "http_error")
        #expect(failed.first?.metadata["status"]?.description == "500")
        let finished = lines.filter { $0.message.description == "pull call finished" }
        #expect(finished.count == (showsSuccess ? 1 : 0))
        if showsSuccess {
            #expect(finished.first?.metadata["partner"]?.description == "p0")
            #expect(finished.first?.metadata["write"]?.description == "stored")
        }
    }
}
