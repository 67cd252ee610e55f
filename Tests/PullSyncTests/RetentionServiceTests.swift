import Logging
import PullSync
import PullSyncKernel
import PullSyncStorage
import PullSyncTesting
import ServiceLifecycle
import ServiceLifecycleTestKit
import Testing

/// The retention sweep as a service: it ends with the group's graceful shutdown, in the middle of
/// its hour-long wait, and sweeps with the store it was given.
@Suite struct RetentionServiceTests {
    @Test func gracefulShutdownEndsTheWaitAndTheService() async throws {
        let store = MemoryStore()
        let old = Timestamp(secondsSinceEpoch: 1_000_000)
        _ = try await store.createRoot(for: EdgeCookie(unchecked: TestPartners.edgeCookie(1)), at: old)
        let service = RetentionService(
            store: store,
            retention: Retention(interval: .seconds(3600)),
            maxUIDAge: .seconds(90 * 86_400),
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        await testGracefulShutdown { trigger in
            let group = ServiceGroup(
                configuration: ServiceGroupConfiguration(
                    services: [.init(service: service)],
                    logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
                )
            )
            let running = Task { try await group.run() }
            trigger.triggerGracefulShutdown()
            let ended = await finishing { try await running.value }
            if case .success? = ended {} else { Issue.record("the service did not end cleanly: \(String(describing: ended))") }
        }
        // What a sweep of the same service does (the loop runs it every interval).
        let swept = try await service.sweep(at: old + .seconds(400 * 86_400))
        #expect(swept == RetentionBatch(uids: 0, ecs: 1))
        #expect(try await store.record(ecHash: String(TestPartners.edgeCookie(1).prefix(64))) == nil)
    }
}
