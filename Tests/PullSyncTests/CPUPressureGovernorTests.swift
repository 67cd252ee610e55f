import Foundation
import InMemoryLogging
import Logging
import MetricsTestKit
import PullSync
import PullSyncTesting
import ServiceLifecycle
import ServiceLifecycleTestKit
import Testing

/// Issue 17: pull sync gives way to pages while the CPU is saturated, as Linux's pressure stall
/// information measures it.
@Suite("CPU pressure governor")
struct CPUPressureGovernorTests {
    static let sample = """
        some avg10=1.52 avg60=0.62 avg300=16.95 total=3407629035
        full avg10=0.00 avg60=0.00 avg300=0.00 total=0

        """

    @Test(
        "Reads the 'some' line's total, and nothing from text that has none",
        arguments: [
            (sample, UInt64(3_407_629_035)),
            ("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", UInt64(0)),
            ("full avg10=0.00 avg60=0.00 avg300=0.00 total=12\n", nil),
            ("some avg10=0.00 total=-4\n", nil),
            ("some avg10=0.00 total=\n", nil),
            ("", nil),
        ] as [(String, UInt64?)]
    )
    func parses(text: String, total: UInt64?) {
        #expect(CPUPressureGovernor.stalledMicroseconds(in: text) == total)
    }

    @Test("Gives way while the share of time stalled since the last reading is over the limit, and records it")
    func followsTheShare() throws {
        let metrics = TestMetrics()
        let governor = CPUPressureGovernor(
            configuration: .init(limit: 0.3),
            metricsFactory: metrics,
            logger: Logger(label: "test")
        )
        let start = ContinuousClock.now
        // The first reading only sets the start.
        governor.observe(1_000_000, at: start)
        #expect(!governor.isGivingWay)
        // 50 ms stalled in 100 ms: 50 %.
        governor.observe(1_050_000, at: start + .milliseconds(100))
        #expect(governor.isGivingWay)
        #expect(try metrics.expectGauge("pullsync_cpu_pressure").lastValue == 0.5)
        // 20 ms in the next 100 ms: 20 %.
        governor.observe(1_070_000, at: start + .milliseconds(200))
        #expect(!governor.isGivingWay)
        #expect(try metrics.expectGauge("pullsync_cpu_pressure").lastValue == 0.2)
        governor.observe(1_110_000, at: start + .milliseconds(300))
        #expect(governor.isGivingWay)
        // Giving way, it lets go only under three quarters of the limit: 25 % holds, 22 % lets go.
        governor.observe(1_135_000, at: start + .milliseconds(400))
        #expect(governor.isGivingWay)
        governor.observe(1_157_000, at: start + .milliseconds(500))
        #expect(!governor.isGivingWay)
        // Not giving way, 25 % is under the limit.
        governor.observe(1_182_000, at: start + .milliseconds(600))
        #expect(!governor.isGivingWay)
        // A file that can no longer be read: never give way on a stale reading.
        governor.observe(1_250_000, at: start + .milliseconds(700))
        #expect(governor.isGivingWay)
        governor.observe(nil, at: start + .milliseconds(800))
        #expect(!governor.isGivingWay)
        // Nor on the first reading after it.
        governor.observe(2_000_000, at: start + .milliseconds(900))
        #expect(!governor.isGivingWay)
    }

    @Test("No wait without pressure; under pressure a cancelled wait ends at once, counted as giving way")
    func waits() async throws {
        let metrics = TestMetrics()
        let governor = CPUPressureGovernor(
            configuration: .init(limit: 0.3, longestWait: .seconds(3600)),
            metricsFactory: metrics,
            logger: Logger(label: "test")
        )
        #expect(await governor.waitForRoom() == false)
        #expect(try metrics.expectCounter("pullsync_gave_way_total").totalValue == 0)

        let start = ContinuousClock.now
        governor.observe(0, at: start)
        governor.observe(90_000, at: start + .milliseconds(100))
        #expect(governor.isGivingWay)
        let waiting = Task { await governor.waitForRoom() }
        waiting.cancel()
        #expect(await waiting.value == true)
        #expect(try metrics.expectCounter("pullsync_gave_way_total").totalValue == 1)
    }

    @Test("Reads a pressure file; a missing one is reported once and the service still ends at graceful shutdown")
    func runs() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("psi-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("cpu.pressure").path
        try Self.sample.write(toFile: file, atomically: true, encoding: .utf8)
        #expect(CPUPressureGovernor.readStalled(file) == 3_407_629_035)
        #expect(CPUPressureGovernor.readStalled(directory.appendingPathComponent("absent").path) == nil)

        let logs = InMemoryLogHandler()
        let governor = CPUPressureGovernor(
            configuration: .init(path: directory.appendingPathComponent("absent").path),
            metricsFactory: TestMetrics(),
            logger: Logger(label: "test", factory: { _ in logs })
        )
        await testGracefulShutdown { trigger in
            let running = Task { try await governor.run() }
            #expect(await eventually { !logs.entries.isEmpty })
            trigger.triggerGracefulShutdown()
            let ended = await finishing { try await running.value }
            if case .success? = ended {} else { Issue.record("the governor did not end cleanly: \(String(describing: ended))") }
        }
        #expect(logs.entries.map(\.message.description) == ["CPU pressure can't be read; pull sync won't give way to pages under load"])
        #expect(!governor.isGivingWay)
    }
}
