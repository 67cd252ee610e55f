import PullSyncConsent
import PullSyncKernel
import PullSyncTesting
import Testing

/// Each consent rule through the kernel, with real-world strings: which partners a request's
/// signals let through, and under which skip reason the others are counted.
@Suite struct ConsentRuleTests {
    /// TCF v2 specification URL example (GDPR-Transparency-and-Consent-Framework, TCFv2/IAB Tech
    /// Lab - Consent string and vendor list formats v2.md): purposes 1-3, vendors 2, 6 and 8.
    static let tcfVendors268 = "COvFyGBOvFyGBAbAAAENAPCAAOAAAAAAAAAAAEEUACCKAAA"
    /// iabtcf-java TCStringV2Test.testConstructConsentsFromBitFields: purposes 3-9 (no purpose 1),
    /// vendors 23, 37, 47, 48, 53, 65, 98.
    static let tcfNoPurposeOne = "COrEAV4OrXx94ACABBENAHCIAD-AAAAAAACAAxAAAAgAIAwgAgAAAAEAgQAAAAAEAYQAQAAAACAAAABAAA"
    /// The partners, in this order: vendor 2 (consented above), vendor 3 (not), no vendor ID,
    /// and vendor 2 that must be skipped in GPP section 7.
    static let partnerIDs = ["v2", "v3", "plain", "skip7"]

    struct Case: Sendable, CustomStringConvertible {
        var name: String
        var strings: ConsentStrings
        /// One decision per partner of `partnerIDs`.
        var expected: [Decision]
        var description: String { name }
    }

    static func all4(_ decision: Decision) -> [Decision] { Array(repeating: decision, count: 4) }

    static let cases: [Case] = [
        Case(name: "no signals: every partner", strings: ConsentStrings(), expected: all4(.dispatch)),
        Case(
            name: "TCF (euconsent-v2): vendor consent and purpose 1 needed; no vendor ID where TCF applies is a skip",
            strings: ConsentStrings(tcf: tcfVendors268),
            expected: [.dispatch, .skip(.tcfConsent), .skip(.tcfConsent), .dispatch]
        ),
        Case(
            name: "TCF without purpose 1: nobody",
            strings: ConsentStrings(tcf: tcfNoPurposeOne),
            expected: all4(.skip(.tcfConsent))
        ),
        Case(
            name: "TCF inside GPP (no gpp_sid: the string's sections apply)",
            strings: ConsentStrings(gpp: "DBABMA~" + tcfVendors268),
            expected: [.dispatch, .skip(.tcfConsent), .skip(.tcfConsent), .dispatch]
        ),
        Case(
            name: "TCF inside GPP, gpp_sid 2; the GPP section wins over euconsent-v2",
            strings: ConsentStrings(tcf: tcfNoPurposeOne, gpp: "DBABMA~" + tcfVendors268, gppSectionIDs: [2]),
            expected: [.dispatch, .skip(.tcfConsent), .skip(.tcfConsent), .dispatch]
        ),
        Case(
            name: "gpp_sid 7: the GPP TCF section doesn't apply, section 7 does",
            strings: ConsentStrings(gpp: "DBABMA~" + tcfVendors268, gppSectionIDs: [7]),
            expected: [.dispatch, .dispatch, .dispatch, .skip(.gppSection)]
        ),
        Case(
            name: "gpp_sid 2 without any TC string: no TCF consent",
            strings: ConsentStrings(gpp: "DBABTA~1YNN", gppSectionIDs: [2]),
            expected: all4(.skip(.tcfConsent))
        ),
        Case(
            name: "GPP usnat section present (no gpp_sid): section 7 applies; no opt-out in it",
            // iabgpp-es UsNat.test: "BVQqAAAACg" (SaleOptOut and SharingOptOut 2: did not opt out).
            strings: ConsentStrings(gpp: "DBABzw~1YNN~BVQqAAAACg"),
            expected: [.dispatch, .dispatch, .dispatch, .skip(.gppSection)]
        ),
        Case(name: "US privacy 1YNN", strings: ConsentStrings(usPrivacy: "1YNN"), expected: all4(.dispatch)),
        Case(name: "US privacy 1---", strings: ConsentStrings(usPrivacy: "1---"), expected: all4(.dispatch)),
        Case(
            name: "US privacy 1YYN: opted out of sale",
            strings: ConsentStrings(usPrivacy: "1YYN"),
            expected: all4(.skip(.usOptOut))
        ),
        Case(
            name: "Sec-GPC: 1",
            strings: ConsentStrings(globalPrivacyControl: true),
            expected: all4(.skip(.usOptOut))
        ),
        Case(
            name: "GPP uspv1 section 1YYN",
            strings: ConsentStrings(gpp: "DBACNYA~" + tcfVendors268 + "~1YYN"),
            expected: all4(.skip(.usOptOut))
        ),
        Case(
            name: "GPP usca section opting out of sale and sharing (iabgpp-es UsCa.test BVWSSSVY.YA)",
            strings: ConsentStrings(gpp: "DBABBgA~BVWSSSVY.YA"),
            expected: all4(.skip(.usOptOut))
        ),
        Case(
            name: "GPP usca section with every field not applicable (iabgpp-es UsCa.test default)",
            strings: ConsentStrings(gpp: "DBABBgA~BAAAAABA.QA"),
            expected: all4(.dispatch)
        ),
        Case(
            name: "Malformed TC string: consent can't be verified",
            strings: ConsentStrings(tcf: "Cg"),
            expected: all4(.skip(.malformedConsent))
        ),
        Case(
            name: "Malformed GPP string",
            strings: ConsentStrings(gpp: "DBACNYA~" + tcfVendors268),
            expected: all4(.skip(.malformedConsent))
        ),
        Case(
            name: "Malformed US privacy string",
            strings: ConsentStrings(usPrivacy: "yes"),
            expected: all4(.skip(.malformedConsent))
        ),
        Case(
            name: "An opt-out wins over a malformed string",
            strings: ConsentStrings(gpp: "DBACNYA~x", usPrivacy: "1NYN"),
            expected: all4(.skip(.usOptOut))
        ),
    ]

    func makeHarness() throws -> Harness {
        try Harness(
            partners: [
                TestPartners.partner("v2", consent: PartnerConsentRequirements(tcfVendorID: 2)),
                TestPartners.partner("v3", consent: PartnerConsentRequirements(tcfVendorID: 3)),
                TestPartners.partner("plain"),
                TestPartners.partner(
                    "skip7",
                    consent: PartnerConsentRequirements(tcfVendorID: 2, gppSkipSections: [7])
                ),
            ]
        )
    }

    @Test("Each rule decides each partner", arguments: cases)
    func decides(example: Case) async throws {
        let harness = try makeHarness()
        try await harness.seed(1)

        let report = await harness.kernel.process(request(1, consentStrings: example.strings))

        let explained = await harness.kernel.explain(request(1, consentStrings: example.strings))
        for (partnerID, expected) in zip(Self.partnerIDs, example.expected) {
            #expect(explained.decision(for: partnerID) == expected, "\(partnerID)")
            #expect(harness.calls(partnerID) == (expected == .dispatch ? 1 : 0), "\(partnerID)")
        }
        // Counted under their own reasons: per partner, or once for the request when no partner can be.
        if case .skip(let reason) = example.expected[0], Set(example.expected).count == 1,
            reason != .tcfConsent
        {
            #expect(report.plan.requestSkip == reason)
            #expect(harness.counter("pullsync_request_skips_total", [("reason", reason.rawValue)]) == 1)
        } else {
            for (partnerID, expected) in zip(Self.partnerIDs, example.expected) {
                let name = expected == .dispatch ? "dispatch" : expected.reason
                #expect(harness.decisions(partnerID, name) == 1, "\(partnerID) \(name)")
            }
        }
    }

    /// Requests where neither TCF nor a GPP section applies get a rules value without the decoded
    /// signals (no allocation); it must refuse exactly what the full rules refuse.
    @Test("The per-partner rules without TCF or GPP refuse what the full rules refuse", arguments: cases)
    func partnerRulesWithoutSignals(example: Case) {
        let rules = IABConsentRules().partnerRules(for: example.strings)
        let full = PartnerConsent(signals: ConsentSignals(example.strings))
        #expect(rules.requestDenial == full.requestDenial)
        let requirements = [
            PartnerConsentRequirements(),
            PartnerConsentRequirements(tcfVendorID: 2),
            PartnerConsentRequirements(tcfVendorID: 3),
            PartnerConsentRequirements(tcfVendorID: 2, gppSkipSections: [7]),
        ]
        for requirement in requirements {
            #expect(rules.denial(for: requirement) == full.denial(for: requirement), "\(requirement)")
        }
        // The light value only where the full rules could refuse no partner.
        let signals = ConsentSignals(example.strings)
        #expect((rules is PartnerConsent) == (signals.tcfApplies || !signals.applicableSections.isEmpty))
    }

    @Test("The host's per-partner policy still refuses partners, as consent")
    func hostPolicy() async throws {
        let harness = try makeHarness()
        try await harness.seed(1)
        let consent = ConsentDecision(granted: true, partnerPolicy: DenyVendor(vendorID: 2))

        let plan = await harness.kernel.explain(request(1, consent: consent))

        #expect(plan.decision(for: "v2") == .skip(.consent))
        #expect(plan.decision(for: "skip7") == .skip(.consent))
        #expect(plan.decision(for: "v3") == .dispatch)
        #expect(plan.decision(for: "plain") == .dispatch)
    }

    @Test("A publisher restriction on purpose 1 skips that vendor only")
    func publisherRestriction() async throws {
        // iabtcf-es ReportedIssues.test.ts issue 201: purposes 1-10; purpose 1 requires consent for
        // vendor 7 (allowed) and legitimate interest for vendor 730 (so its consent can't be used);
        // vendor 3 has no consent.
        let tcf =
            "CO4VGswO4VGswAfZCBDEAzCsAP_AAH_AAAigGUNf_X9fb2vj-_599_t0eY1f9_63t-wzjheMs-8NyZ-X_J4Wv2MyvB34JqQKGRgkunLBAQdtHGncTQgBwIlViTLMY02MjzNKJrJEilsbe2dYGH9vn8XT_ZKZ70-_v__7v3___33_5Ayhr_6_r7e18f3_Pvv9ujzGr_v_W9v2GccLxln3huTPy_5PC1-xmV4O_BNSBQyMEl05YICDto407iaEAOBEqsSZZjGmxkeZpRNZIkUtjb2zrAw_t8_i6f7JTPen39___d-___--__ICgKAOAAcAA4AFAAjgB6AEYALcGACAW0AtoJAHAAOAAcACgARwA9ACMAFuFABALaAW0GgDgAHAAOABQAI4AegBGAC3DgAgFtALaEQBwADgAHAAoAEcAPQAjABbiQAQC2gFtCoA4ABwADgAUACOAHoARgAtxYAIBbQC2hkAcAA4ABwAKABHAD0AIwAW40AEAtoBbQ6AOAAcAA4AFAAjgB6AEYALceACAW0AtohAHAAOAAcACgARwA9ACMAFuRABALaAW0SgDgAHAAOABQAI4AegBGAC3JgAgFtALaKQBwADgAHAAoAEcAPQAjABblQAQC2gFtA"
        let harness = try Harness(
            partners: [7, 730, 3].map { (id: Int) in
                TestPartners.partner("v\(id)", consent: PartnerConsentRequirements(tcfVendorID: id))
            }
        )
        try await harness.seed(1)

        let plan = await harness.kernel.explain(request(1, consentStrings: ConsentStrings(tcf: tcf)))

        #expect(plan.decisions.count == 3)
        #expect(plan.decision(for: "v7") == .dispatch)
        #expect(plan.decision(for: "v730") == .skip(.tcfConsent))
        #expect(plan.decision(for: "v3") == .skip(.tcfConsent))
        let consent = PartnerConsent(signals: ConsentSignals(ConsentStrings(tcf: tcf)))
        #expect(
            consent.denial(for: PartnerConsentRequirements(tcfVendorID: 730))?.detail
                == "the publisher requires legitimate interest, not consent, for purpose 1 for vendor 730"
        )
    }

    @Test("Request-level denials say why, and whether they withdraw the EC")
    func denials() {
        func denial(_ strings: ConsentStrings, host: ConsentDecision = .granted) -> ConsentDenial? {
            ConsentSignals(strings).requestDenial(host: host)
        }
        #expect(denial(ConsentStrings()) == nil)
        #expect(
            denial(ConsentStrings(), host: .denied)
                == ConsentDenial(reason: .consent, detail: "the host's consent decision is denied", withdraws: true)
        )
        #expect(
            denial(ConsentStrings(usPrivacy: "1YYN"))
                == ConsentDenial(reason: .usOptOut, detail: "us_privacy 1YYN opts out of sale", withdraws: true)
        )
        #expect(
            denial(ConsentStrings(gpp: "DBABzw~1YNN~BVVVkkkkkpFY.YA"))
                == ConsentDenial(
                    reason: .usOptOut,
                    detail: "GPP section 7 (usnat) opts out of sale and sharing and GPC",
                    withdraws: true
                )
        )
        // Unreadable is not an affirmative denial: skipped, but the EC is kept.
        #expect(
            denial(ConsentStrings(usPrivacy: "1YXN"))
                == ConsentDenial(
                    reason: .malformedConsent,
                    detail: "US privacy string '1YXN': character 3 must be Y, N or -",
                    withdraws: false
                )
        )
    }
}
