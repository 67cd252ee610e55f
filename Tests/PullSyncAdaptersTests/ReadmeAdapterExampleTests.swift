import Foundation
import PartnerAdapterKit
import PullSync
import PullSyncConsent
import PullSyncStorage
import PullSyncTesting
import Testing

// The "Writing one" example of the Partner manifests article, compiled and run: the lines between
// each pair of markers must appear verbatim in Sources/PullSync/PullSync.docc/PartnerManifests.md
// (checked below).

// --- README adapter starts
struct AcmeBatchAdapter: CompiledAdapter {
    static let descriptor = AdapterDescriptor(
        name: "acme-batch",
        summary: "GET {url}/{ec_hash} with an API key",
        parameters: [AdapterParameter("api_key", .secret, .required, summary: "The API key.")]
    )
    let configuration: CompiledAdapterConfiguration

    init(configuration: CompiledAdapterConfiguration) throws(AdapterError) {
        self.configuration = configuration
    }

    func makeRequest(for context: PullContext) throws(AdapterError) -> PullRequest {
        var url = configuration.url
        url.path += "/" + context.edgeCookie.hashString
        let key = try configuration.secret("api_key")  // throws, naming the reference, when unresolved
        return PullRequest(url: url, headers: [.init(name: "X-Api-Key", value: key.reveal(), isSecret: true)])
    }

    func classify(_ result: TransportResult, context: PullContext) -> PullOutcome {
        switch result {
        case .failure(let failure): PullOutcome(failure)
        case .response(200, _, let body): HTTPPullAdapter.extractUID(from: body, path: ["uid"])
        case .response(404, _, _): .notFound
        case .response(let status, _, _): .httpError(status: status)
        }
    }
}
// --- README adapter ends

@Suite struct ReadmeAdapterExampleTests {
    @Test func theReadmeAdapterLoadsFromAManifestAndRunsThroughTheKernel() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("readme-adapter-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try """
        id: acme
        source_domain: acme.example
        pull:
          url: https://batch.acme.example/ids
          allowed_hosts: [batch.acme.example]
          adapter: acme-batch
          params:
            api_key: { env: ACME_API_KEY }
        """.write(to: folder.appendingPathComponent("acme.yaml"), atomically: true, encoding: .utf8)
        let partnersDirectory = folder.path

        // --- README registration starts
        let adapters = AdapterRegistry.builtIn.registering(AcmeBatchAdapter.self)
        let loaded = PartnerLoader.load(
            paths: [partnersDirectory],
            secrets: EnvironmentSecretResolver(),
            adapters: adapters
        )
        // --- README registration ends

        // Without ACME_API_KEY in the environment the partner is disabled, naming the reference.
        #expect(loaded.diagnostics.map(\.message) == ["secret env:ACME_API_KEY is not set; partner 'acme' is disabled"])
        let withKey = PartnerLoader.load(
            paths: [partnersDirectory],
            secrets: EnvironmentSecretResolver(environment: ["ACME_API_KEY": "k-123"]),
            adapters: adapters
        )
        #expect(withKey.diagnostics.isEmpty)
        let transport = ScriptedTransport()
        transport.script("batch.acme.example", .uid("acme-9"))
        let kernel = PullKernel(
            registry: withKey.registry,
            graph: InMemoryIdentityGraph(),
            rateLimiter: InMemoryRateLimiter(),
            transport: transport,
            consent: IABConsentRules(),
            clock: SystemWallClock()
        )
        let edgeCookie = try #require(DefaultEdgeCookieFormat().parse(TestPartners.edgeCookie(5)))
        let result = try #require(try await kernel.probe(partnerID: "acme", edgeCookie: edgeCookie))
        #expect(result.outcome == .uid("acme-9"))
        #expect(result.request.renderedURL == "https://batch.acme.example/ids/\(edgeCookie.hashString)")
        #expect(result.request.redactedHeaders.map { "\($0.name): \($0.value)" } == ["X-Api-Key: <redacted>"])
        #expect(result.request.headers.first?.value == "k-123")
    }

    @Test(arguments: [("adapter", 0, "import PullSync\n\n"), ("registration", 8, "")])
    func theReadmeShowsExactlyThisCode(marker: String, indentation: Int, prefix: String) throws {
        let lines = try String(contentsOfFile: #filePath, encoding: .utf8).split(
            separator: "\n",
            omittingEmptySubsequences: false
        )
        let start = try #require(lines.firstIndex { $0.hasSuffix("// --- README \(marker) starts") })
        let end = try #require(lines.firstIndex { $0.hasSuffix("// --- README \(marker) ends") })
        let snippet = lines[(start + 1)..<end].map { String($0.dropFirst(min(indentation, $0.count))) }
            .joined(separator: "\n")
        let readme = try String(
            contentsOf: packageRoot.appendingPathComponent("Sources/PullSync/PullSync.docc/PartnerManifests.md"),
            encoding: .utf8
        )
        #expect(readme.contains("```swift\n" + prefix + snippet + "\n```"))
    }
}
