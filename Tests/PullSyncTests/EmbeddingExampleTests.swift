import Logging
import PullSync
import PullSyncTesting
import ServiceLifecycle
import Testing

// The README's "Embedding the kernel" example, compiled and run. Keep the two in step.
@Suite struct EmbeddingExampleTests {
    @Test func readmeExampleRunsAndLearnsAUID() async throws {
        let transport = ScriptedTransport()
        transport.script(TestPartners.host("acme"), .uid("acme-user-42"))
        let graph = InMemoryIdentityGraph()
        let ec = TestPartners.edgeCookie(99)

        // --- README example starts
        let kernel = PullKernel(
            registry: try PartnerRegistry([TestPartners.partner("acme")]),
            graph: graph,  // or any IdentityGraph
            rateLimiter: InMemoryRateLimiter(),  // or any RateLimiter
            transport: transport  // any PullTransport
        )
        let dispatcher = PullDispatcher(kernel: kernel)
        let pullSync = PullSyncService(dispatcher: dispatcher)  // run it in your ServiceGroup

        // In a request handler, once the response is on its way:
        dispatcher.submit(
            OrganicRequest(path: "/article/1", edgeCookie: ec, ecIssuedOnThisRequest: true, consent: .granted)
        )
        // --- README example ends

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await pullSync.run() }
            #expect(try await eventually { dispatcher.statistics.stored == 1 })
            dispatcher.beginShutdown()
            try await group.next()
        }
        let record = try #require(try await graph.record(ecHash: String(ec.prefix(64))))
        #expect(record.partners["acme.example"]?.uid == "acme-user-42")
    }
}
