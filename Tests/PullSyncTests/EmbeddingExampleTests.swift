import PartnerAdapterKit
import Foundation
import Logging
import CoreMetrics
import MetricsTestKit
import PullSync
import PullSyncStorage
import PullSyncTesting
import ServiceLifecycle
import ServiceLifecycleTestKit
import Testing

// The README's embedding example, compiled and run: the lines between the markers below must
// appear verbatim in README.md and in the Embedding article (checked by the second test).
@Suite struct EmbeddingExampleTests {
    @Test func readmeExampleRunsAndLearnsAUID() async throws {
        let partnersDirectory = shippedPartners
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("embed-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let storeURL = "sqlite:" + scratch.appendingPathComponent("edge.db").path
        let transport = ScriptedTransport()
        transport.script("sync.acme.example", .uid("acme-user-42"))
        let metricsFactory = TestMetrics()
        let logger = Logger(label: "example", factory: { _ in SwiftLogNoOpLogHandler() })
        let path = "/article/1"
        let ecCookie = TestPartners.edgeCookie(99)
        let issued = true
        // The shipped manifests' tokens, as a deployment's environment would give them.
        let environment = ["ACME_TOKEN": "t0k3n", "PULLSYNC_EC_SECRET": "0123456789abcdef"]
        // The README's lines, with the HTTP transport swapped for a scripted one.
        func PullSyncService(
            configuration: PullSync.PullSyncService.Configuration,
            metricsFactory: any MetricsFactory,
            logger: Logger
        ) async throws -> PullSync.PullSyncService {
            try await PullSync.PullSyncService(
                configuration: configuration,
                environment: environment,
                secrets: nil,
                metricsFactory: metricsFactory,
                wrapTransport: { _ in transport },
                logger: logger
            )
        }

        // --- README example starts
        let pullSync = try await PullSyncService(
            configuration: .init(partnersDirectory: partnersDirectory, store: storeURL),
            metricsFactory: metricsFactory,  // optional, swift-metrics
            logger: logger
        )
        // Add `pullSync` to your ServiceGroup, before your HTTP server. In a request handler,
        // once the response is on its way:
        pullSync.submit(
            OrganicRequest(path: path, edgeCookie: ecCookie, ecIssuedOnThisRequest: issued, consent: .granted)
        )
        // --- README example ends

        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await pullSync.run() }
                #expect(await eventually { pullSync.dispatcher.statistics.processed == 1 })
                let record = try #require(try await pullSync.ids(ecID: ecCookie))
                #expect(record.partners["acme.example"]?.uid == "acme-user-42")
                trigger.triggerGracefulShutdown()
                try await group.next()
            }
        }
        let acme = try #require(transport.requests.first { $0.url.host == "sync.acme.example" })
        #expect(acme.headers.contains { $0.name == "Authorization" && $0.value == "Bearer t0k3n" })
        #expect(
            try metricsFactory.expectCounter("pullsync_writes_total", [("partner", "acme"), ("result", "stored")])
                .totalValue == 1
        )
        // Stopped means closed: the store no longer answers.
        await #expect(throws: (any Error).self) { _ = try await pullSync.ids(ecID: ecCookie) }
    }

    @Test func readmeShowsExactlyThisExample() throws {
        let source = try String(contentsOfFile: #filePath, encoding: .utf8)
        let lines = source.split(separator: "\n", omittingEmptySubsequences: false)
        let start = try #require(lines.firstIndex { $0.contains("// --- README example starts") })
        let end = try #require(lines.firstIndex { $0.contains("// --- README example ends") })
        let indentation = 8
        let snippet = lines[(start + 1)..<end].map { String($0.dropFirst(min(indentation, $0.count))) }
            .joined(separator: "\n")
        for document in ["README.md", "Sources/PullSync/PullSync.docc/Embedding.md"] {
            let text = try String(contentsOf: packageRoot.appendingPathComponent(document), encoding: .utf8)
            #expect(text.contains("```swift\nimport PullSync\n\n" + snippet + "\n```"), "\(document)")
        }
    }
}
