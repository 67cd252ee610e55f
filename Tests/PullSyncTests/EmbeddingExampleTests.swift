import Foundation
import Logging
import MetricsTestKit
import PullSync
import PullSyncTesting
import ServiceLifecycle
import Testing

// The README's "Embedding the kernel" example, compiled and run: the lines between the
// markers below must appear verbatim in README.md (checked by the second test).
@Suite struct EmbeddingExampleTests {
    /// Resolves every token reference to a fixed value, as a deployment's secrets would.
    struct FixedSecrets: SecretResolver {
        func resolve(_ reference: SecretReference) throws(SecretResolutionError) -> Secret { Secret("t0k3n") }
    }

    @Test func readmeExampleRunsAndLearnsAUID() async throws {
        let partnersDirectory = shippedPartners
        let secrets = FixedSecrets()
        let transport = ScriptedTransport()
        transport.script("sync.acme.example", .uid("acme-user-42"))
        let metricsFactory = TestMetrics()
        let logger = Logger(label: "example", factory: { _ in SwiftLogNoOpLogHandler() })
        let graph = InMemoryIdentityGraph()
        let path = "/article/1"
        let ecCookie = TestPartners.edgeCookie(99)
        let issued = true

        // --- README example starts
        let loaded = PartnerLoader.load(paths: [partnersDirectory], secrets: secrets)
        for diagnostic in loaded.diagnostics { logger.error("\(diagnostic)") }

        let kernel = PullKernel(
            registry: loaded.registry,
            graph: graph,  // any IdentityGraph
            rateLimiter: InMemoryRateLimiter(),  // any RateLimiter
            transport: transport,  // any PullTransport, e.g. HTTPPullTransport()
            metricsFactory: metricsFactory,  // optional, swift-metrics
            logger: logger  // optional, swift-log
        )
        let dispatcher = PullDispatcher(kernel: kernel)
        let pullSync = PullSyncService(dispatcher: dispatcher)  // add to your ServiceGroup

        // In a request handler, once the response is on its way:
        dispatcher.submit(
            OrganicRequest(path: path, edgeCookie: ecCookie, ecIssuedOnThisRequest: issued, consent: .granted)
        )
        // --- README example ends

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await pullSync.run() }
            #expect(await eventually { dispatcher.statistics.processed == 1 })
            dispatcher.beginShutdown()
            try await group.next()
        }
        let record = try #require(try await graph.record(ecHash: String(ecCookie.prefix(64))))
        #expect(record.partners["acme.example"]?.uid == "acme-user-42")
        let acme = try #require(transport.requests.first { $0.url.host == "sync.acme.example" })
        #expect(acme.headers.contains { $0.name == "Authorization" && $0.value == "Bearer t0k3n" })
        #expect(
            try metricsFactory.expectCounter("pullsync_writes_total", [("partner", "acme"), ("result", "stored")])
                .totalValue == 1
        )
    }

    @Test func readmeShowsExactlyThisExample() throws {
        let source = try String(contentsOfFile: #filePath, encoding: .utf8)
        let lines = source.split(separator: "\n", omittingEmptySubsequences: false)
        let start = try #require(lines.firstIndex { $0.contains("// --- README example starts") })
        let end = try #require(lines.firstIndex { $0.contains("// --- README example ends") })
        let indentation = 8
        let snippet = lines[(start + 1)..<end].map { String($0.dropFirst(min(indentation, $0.count))) }
            .joined(separator: "\n")
        let readme = try String(contentsOf: packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        #expect(readme.contains("```swift\nimport PullSync\n\n" + snippet + "\n```"))
    }
}
