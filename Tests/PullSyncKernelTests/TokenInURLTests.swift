import PullSyncKernel
import PartnerAdapterKit
import PullSyncTesting
import Testing

@Suite struct TokenInURLTests {
    @Test("HTTPPullAdapter refuses {token} in a query template even when built in code")
    func tokenInQueryIsRefused() async throws {
        let partner = httpPartner(
            "leaky",
            query: [item("ec_id", "{ec_id}"), item("key", "{token}")],
            auth: .headerTemplate(.environment("LEAKY")),
            token: Secret("TOPSECRET")
        )
        let harness = try Harness(partners: [partner])
        let report = await harness.kernel.process(request(1, issued: true))
        #expect(report.plan.decision(for: "leaky") == .skip(.adapterError))
        #expect(harness.transport.requests.isEmpty)
        let logged = harness.logs.entries.map { "\($0.message) \($0.metadata)" }.joined()
        #expect(logged.contains("may not use {token}"))
        #expect(!logged.contains("TOPSECRET"))
    }
}
