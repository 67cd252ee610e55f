/// When pull sync gives way to the pages it shares the machine with: the dispatcher asks before
/// it takes each queued request, but only while pages keep arriving (requests submitted since
/// it last took one), so that pull sync alone on an idle edge runs at full speed. While it waits
/// the queue fills, and what doesn't fit is dropped and counted, never the page.
///
/// `PullSyncService` uses a governor that reads the CPU's pressure stall information
/// (`CPUPressureGovernor`).
public protocol LoadGovernor: Sendable {
    /// Returns once pull sync may take its next request, or when the task is cancelled; whether
    /// it waited.
    func waitForRoom() async -> Bool
}
