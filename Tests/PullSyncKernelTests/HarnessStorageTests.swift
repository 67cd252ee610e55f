import PullSyncKernel
import PullSyncTesting
import Testing

/// The kernel suite runs on either storage (`PULLSYNC_TEST_KERNEL_STORAGE`); each must take the
/// paths it names, or running the suite both ways would test one path twice.
@Suite struct HarnessStorageTests {
    @Test("Each storage takes its own store steps, with the same decisions", arguments: Harness.Storage.allCases)
    func storageTakesItsPaths(storage: Harness.Storage) async throws {
        func roundTrips(_ harness: Harness, _ operation: String) -> Int64 {
            harness.counter("pullsync_store_round_trips_total", [("operation", operation)])
        }
        let harness = try Harness(partners: partners(["a", "b"]), fallback: .uid("u"), storage: storage)
        try await harness.seed(1)
        try await harness.seed(2)

        let known = await harness.kernel.process(request(1))
        let issued = await harness.kernel.process(request(3, issued: true))

        for report in [known, issued] {
            #expect(report.plan.decisions.map { $0.decision } == [Decision.dispatch, .dispatch])
            #expect(report.results.map { $0.write } == [WriteResult.stored, .stored])
        }
        switch storage {
        case .combined:
            #expect(roundTrips(harness, "lookup_admit") == 1)
            #expect(roundTrips(harness, "create_root_admit") == 1)
            #expect(roundTrips(harness, "lookup") == 0)
            #expect(roundTrips(harness, "create_root") == 0)
            #expect(roundTrips(harness, "admit") == 0)
        case .separate:
            #expect(roundTrips(harness, "lookup_admit") == 0)
            #expect(roundTrips(harness, "create_root_admit") == 0)
            #expect(roundTrips(harness, "lookup") == 1)
            #expect(roundTrips(harness, "create_root") == 1)
            #expect(roundTrips(harness, "admit") == 2)
        }
    }
}
