import PullSyncKernel
import PullSyncTesting
import Testing

@Suite struct PartnerConsentSignalTests {
    @Test(
        "GPP skip sections and TCF presence decide per partner",
        arguments: [
            // (request's applicable GPP sections, TC string present, policy given, expected for the partner with skip sections [7, 8] and vendor 123, expected for the plain partner)
            ([Int](), false, false, true, true),
            ([7], false, false, false, true),
            ([2, 8], false, false, false, true),
            ([2], false, false, true, true),
            ([], true, false, false, false),
            ([], true, true, true, true),
            ([7], true, true, false, true),
        ]
    )
    func decides(sections: [Int], tcf: Bool, policy: Bool, strict: Bool, plain: Bool) async throws {
        let harness = try Harness(
            partners: partners(["strict", "plain"]) { partner in
                if partner.id == "strict" {
                    partner.consent = PartnerConsentRequirements(tcfVendorID: 123, gppSkipSections: [7, 8])
                }
            }
        )
        let consent = ConsentDecision(granted: true, partnerPolicy: policy ? DenyVendor(vendorID: 999) : nil)
        let strings = ConsentStrings(
            tcf: tcf ? "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA" : nil,
            gppSectionIDs: sections
        )
        let plan = await harness.kernel.explain(request(1, issued: true, consent: consent, consentStrings: strings))
        #expect(plan.decision(for: "strict") == (strict ? .dispatch : .skip(.consent)))
        #expect(plan.decision(for: "plain") == (plain ? .dispatch : .skip(.consent)))
    }
}
