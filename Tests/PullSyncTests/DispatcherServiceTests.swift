import Logging
import PullSync
import PullSyncConsent
import PullSyncStorage
import PullSyncTesting
import ServiceLifecycle
import ServiceLifecycleTestKit
import Testing

@Suite struct DispatcherServiceTests {
    func makeDispatcher(
        transport: ScriptedTransport,
        graph: InMemoryIdentityGraph,
        graceEnds: TestGate
    ) throws -> PullDispatcher {
        let partners = ["fast", "slow"].map { TestPartners.partner($0, timeout: .seconds(10)) }
        let kernel = PullKernel(
            registry: try PartnerRegistry(partners),
            configuration: PullSyncConfiguration(),
            graph: graph,
            rateLimiter: InMemoryRateLimiter(),
            transport: transport,
            consent: IABConsentRules(),
            clock: TestWallClock(),
            random: SeededRandomSource(seed: 7)
        )
        // The grace period ends when the test opens `graceEnds`, not after a while.
        return PullDispatcher(kernel: kernel, sleep: { (_: Duration) async -> Void in
            _ = await graceEnds.waitUnlessCancelled()
        })
    }

    @Test func gracefulShutdownKeepsWhatArrivedWithinTheGracePeriodAndCancelsTheRest() async throws {
        let transport = ScriptedTransport()
        let fastAnswers = TestGate()
        let graceEnds = TestGate()
        transport.script(TestPartners.host("fast"), ScriptedTransport.Reply.uid("uid-fast").held(by: fastAnswers))
        // The slow partner never answers: only the end of the grace period ends its call.
        transport.script(TestPartners.host("slow"), ScriptedTransport.Reply.uid("uid-slow").held(by: TestGate()))
        let graph = InMemoryIdentityGraph()
        let dispatcher = try makeDispatcher(transport: transport, graph: graph, graceEnds: graceEnds)
        let ec = TestPartners.edgeCookie(1)
        let hash = String(ec.prefix(64))

        try await testGracefulShutdown { (trigger) async throws in
            let group = ServiceGroup(
                configuration: ServiceGroupConfiguration(
                    services: [.init(service: DispatcherService(dispatcher: dispatcher))],
                    logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
                )
            )
            let running = Task { try await group.run() }
            #expect(
                dispatcher.submit(
                    OrganicRequest(path: "/", edgeCookie: ec, ecIssuedOnThisRequest: true, consent: .granted)
                )
                    == .enqueued
            )
            #expect(await transport.started(2))
            trigger.triggerGracefulShutdown()
            // Within the grace period the fast partner answers and its UID is stored; then the
            // grace period ends with the slow call still out.
            fastAnswers.open()
            #expect(
                try await eventually { try await graph.record(ecHash: hash)?.partners["fast.example"] != nil }
            )
            #expect(transport.inFlight == 1)
            graceEnds.open()
            // The service ends at the end of the grace period: waiting for the slow partner would
            // never end, which the hang guard turns into a failure.
            let ended = await finishing { try await running.value }
            if case .success? = ended {} else { Issue.record("the service did not end cleanly: \(String(describing: ended))") }
        }
        let record = try #require(try await graph.record(ecHash: hash))
        #expect(record.partners["fast.example"]?.uid == "uid-fast")
        #expect(record.partners["slow.example"] == nil)
        #expect(dispatcher.submit(OrganicRequest(path: "/", edgeCookie: ec, consent: .granted)) == .notRunning)
    }
}
