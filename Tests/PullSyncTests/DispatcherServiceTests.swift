import Logging
import PullSync
import PullSyncStorage
import PullSyncTesting
import ServiceLifecycle
import ServiceLifecycleTestKit
import Testing

@Suite struct DispatcherServiceTests {
    func makeDispatcher(
        transport: ScriptedTransport,
        graph: InMemoryIdentityGraph,
        grace: Duration
    ) throws -> PullDispatcher {
        let partners = ["fast", "slow"].map { TestPartners.partner($0, timeout: .seconds(10)) }
        let kernel = PullKernel(
            registry: try PartnerRegistry(partners),
            configuration: PullSyncConfiguration(shutdownGracePeriod: grace),
            graph: graph,
            rateLimiter: InMemoryRateLimiter(),
            transport: transport,
            clock: TestWallClock(),
            random: SeededRandomSource(seed: 7)
        )
        return PullDispatcher(kernel: kernel)
    }

    @Test func gracefulShutdownKeepsWhatArrivedWithinTheGracePeriodAndCancelsTheRest() async throws {
        let transport = ScriptedTransport()
        transport.script(TestPartners.host("fast"), .uid("uid-fast", after: .milliseconds(100)))
        transport.script(TestPartners.host("slow"), .uid("uid-slow", after: .seconds(60)))
        let graph = InMemoryIdentityGraph()
        let dispatcher = try makeDispatcher(transport: transport, graph: graph, grace: .milliseconds(600))
        let ec = TestPartners.edgeCookie(1)
        let hash = String(ec.prefix(64))

        try await testGracefulShutdown { trigger in
            let group = ServiceGroup(
                configuration: ServiceGroupConfiguration(
                    services: [.init(service: DispatcherService(dispatcher: dispatcher))],
                    logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
                )
            )
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                #expect(
                    dispatcher.submit(
                        OrganicRequest(path: "/", edgeCookie: ec, ecIssuedOnThisRequest: true, consent: .granted)
                    )
                        == .enqueued
                )
                #expect(try await eventually { transport.inFlight == 2 })
                let started = ContinuousClock.now
                trigger.triggerGracefulShutdown()
                try await tasks.next()
                // The service ended after the grace period, not after the slow partner's 60 s (a loose
                // bound: a loaded machine may be slow, never that slow).
                #expect(ContinuousClock.now - started < .seconds(30))
            }
        }
        let record = try #require(try await graph.record(ecHash: hash))
        #expect(record.partners["fast.example"]?.uid == "uid-fast")
        #expect(record.partners["slow.example"] == nil)
        #expect(dispatcher.submit(OrganicRequest(path: "/", edgeCookie: ec, consent: .granted)) == .notRunning)
    }
}
