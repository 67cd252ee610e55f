import PullSyncKernel
import PullSyncTesting
import Testing

@Suite struct HeaderInjectionTests {
    @Test(
        "Browser-supplied values that would inject or bloat a header are refused, not sent",
        arguments: ["CPX\r\nX-Injected: yes", "a\u{0}b", "x\u{7F}", "8193 bytes"]
    )
    func refused(value: String) async throws {
        let value = value == "8193 bytes" ? String(repeating: "A", count: 8193) : value
        let partner = httpPartner("acme", headers: [item("X-Consent", "{gdpr_consent}")], token: Secret("t"))
        let harness = try Harness(partners: [partner])
        let consent = ConsentDecision(granted: true, partnerPolicy: DenyVendor(vendorID: 999))
        let report = await harness.kernel.process(
            request(1, issued: true, consent: consent, consentStrings: ConsentStrings(tcf: value))
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
        let partner = httpPartner("acme", headers: [item("X-Consent", "{gdpr_consent}")], token: Secret("t"))
        let harness = try Harness(partners: [partner])
        let consent = ConsentDecision(granted: true, partnerPolicy: DenyVendor(vendorID: 999))
        _ = await harness.kernel.process(
            request(1, issued: true, consent: consent, consentStrings: ConsentStrings(tcf: "CPXxRfAPXxRfA.tab\there"))
        )
        #expect(
            harness.transport.requests.first?.headers.first { $0.name == "X-Consent" }?.value
                == "CPXxRfAPXxRfA.tab\there"
        )
    }
}
