import PullSyncKernel
import PartnerAdapterKit
import PullSyncTesting
import Testing

@Suite struct HeaderInjectionTests {
    @Test(
        "Browser-supplied values that would inject or bloat a header are refused, not sent",
        arguments: ["CPX\r\nX-Injected: yes", "a\u{0}b", "x\u{7F}", "8193 bytes"]
    )
    func refused(value: String) async throws {
        let value = value == "8193 bytes" ? String(repeating: "A", count: 8193) : value
        let partner = httpPartner("acme", headers: [item("X-Consent", "{gpp}")], token: Secret("t"))
        let harness = try Harness(partners: [partner])
        // A well-formed GPP string (header DBABjw: sections 5 and 6, from the GPP specification)
        // whose Canadian TCF section, which pullsync doesn't decode, carries the value.
        let gpp = "DBABjw~" + value + "~1YNN"
        let consent = ConsentDecision.granted
        let report = await harness.kernel.process(
            request(1, issued: true, consent: consent, consentStrings: ConsentStrings(gpp: gpp))
        )
        #expect(report.plan.decision(for: "acme") == .skip(.adapterError))
        #expect(harness.transport.requests.isEmpty)
        #expect(harness.decisions("acme", "adapter_error") == 1)
        // Not the partner's fault: nothing is held for it, and the next clean request calls it.
        let next = await harness.kernel.process(request(2, issued: true, consent: consent))
        #expect(next.plan.decision(for: "acme") == .dispatch)
    }

    @Test("Ordinary consent strings pass")
    func passes() async throws {
        let partner = httpPartner("acme", headers: [item("X-Consent", "{gpp}")], token: Secret("t"))
        let harness = try Harness(partners: [partner])
        _ = await harness.kernel.process(
            request(1, issued: true, consentStrings: ConsentStrings(gpp: "DBABjw~CPXxRfAPXxRfA.tab\there~1YNN"))
        )
        #expect(
            harness.transport.requests.first?.headers.first { $0.name == "X-Consent" }?.value
                == "DBABjw~CPXxRfAPXxRfA.tab\there~1YNN"
        )
    }
}
