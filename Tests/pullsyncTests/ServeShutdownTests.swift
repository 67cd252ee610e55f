import Foundation
import PullSync
import PullSyncSQLite
import PullSyncTesting
import PartnerSimulator
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `pullsync serve` as a real process: SIGTERM while slow partner calls are in flight.
@Suite(.serialized) struct ServeShutdownTests {
    /// The partner holds its answer until the test opens a gate: right after the SIGTERM, answered
    /// well inside a 60 s grace period (so long that only a hang reaches it), or never, so that only
    /// the 1 s grace period ends the call; without it, the call would run to the partner's 30 s
    /// timeout. (A 2 s delay stood for the first once: on a busy machine the call could end before
    /// the test saw it in flight, and the test waited for it until its hang guard.)
    @Test(arguments: [
        ("fast partner answers within the grace period", true, 60, 1),
        ("slow partner outlives it", false, 1, 0),
    ])
    func sigtermLetsCallsInFlightFinishWithinTheGracePeriodAndExitsZero(
        scenario: String,
        answersAfterSIGTERM: Bool,
        graceSeconds: Int,
        expectedStored: Int
    ) async throws {
        let gate = ResponseGate()
        let local = try await LocalPartner.start(
            answering: .held(gate, .uid("u-1")),
            certificateAuthority: TestCertificateAuthority()
        )
        let server = local.server
        let directory = local.directory
        let caFile = try #require(local.caFile)

        let serve = try await ServeProcess([
            "--partners", local.partners.path, "--allow-loopback", "--tls-ca-file", caFile, "--grace-period", "\(graceSeconds)",
            "--store", "sqlite:" + directory.appendingPathComponent("store.db").path,
        ])
        defer { serve.stop() }
        let process = serve.process
        let collector = serve.log
        let port = serve.port
        let response = try await fetchPage(port: port)
        #expect(response.status == .ok)
        let cookie = try #require(response.headers["set-cookie"].first)
        #expect(cookie.hasPrefix("ts-ec="))
        let ecHash = String(cookie.dropFirst("ts-ec=".count).prefix(64))
        // The partner call is out (its answer held); now stop the service.
        #expect(await eventually { server.requestsInProgress == 1 })
        let stopped = ContinuousClock.now
        kill(process.processIdentifier, SIGTERM)
        // The answer may reach the edge before or after it handles the signal; either way the call
        // was in flight when the signal was sent, and the edge must exit 0 having stored it.
        if answersAfterSIGTERM { gate.open() }
        #expect(await eventually { !process.isRunning })
        let elapsed = ContinuousClock.now - stopped
        #expect(process.terminationReason == .exit)
        #expect(process.terminationStatus == 0)
        if expectedStored == 0 {
            // Ended by the 1 s grace period (plus process teardown), not by the partner's 30 s timeout:
            // the one elapsed-time check left, with 29 s between the two on a machine however busy.
            #expect(elapsed < .seconds(25), "\(scenario)")
        }
        #expect(await eventually { collector.value.contains("pullsync serve stopped") })
        #expect(collector.value.contains("stored=\(expectedStored)"), "\(collector.value)")

        // What the call learned before the exit is in the store file; the EC is there either way.
        let store = try await SQLiteStore.open(path: directory.appendingPathComponent("store.db").path)
        let record = try await store.record(ecHash: ecHash)
        try await store.close()
        try await local.stop()
        #expect(record != nil, "the EC issued on the page was recorded")
        #expect(record?.partners["local.example"]?.uid == (expectedStored == 1 ? "u-1" : nil))
    }
}
