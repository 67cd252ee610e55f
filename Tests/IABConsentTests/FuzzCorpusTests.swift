import Foundation
import IABConsent
import PullSyncConsent
import PullSyncKernel
import Testing

/// Replays the consent fuzzer's committed corpus (`Fuzz/Corpus/consent/`: real strings from the
/// IAB specifications and libraries, and malformed ones) through the fuzz target's path, so every
/// seed and finding stays a regression test. An input is the fuzz target's: one signal per line,
/// `TC string`, `GPP string`, `gpp_sid`, `US privacy string`.
@Suite("Fuzz corpus: consent signals")
struct ConsentFuzzCorpusTests {
    static let folder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/Corpus/consent")

    static var inputs: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).sorted()
    }

    /// An input's four lines (`nil` for a missing or empty one).
    static func signals(_ name: String) throws -> [String?] {
        let text = try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
        let lines = text.split(separator: "\n", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
        return (0..<4).map { $0 < lines.count && !lines[$0].isEmpty ? lines[$0] : nil }
    }

    @Test("The corpus is there")
    func corpusPresent() {
        #expect(Self.inputs.count >= 20)
        #expect(Self.inputs.filter { $0.hasPrefix("malformed-") }.count >= 6)
    }

    @Test("Every input runs through the decoders and the rules as the fuzz target runs it", arguments: inputs)
    func replay(_ name: String) throws {
        let lines = try Self.signals(name)
        let strings = ConsentStrings(
            tcf: lines[0],
            gpp: lines[1],
            gppSectionIDs: lines[2].map { $0.split(separator: ",").compactMap { Int($0) } } ?? [],
            usPrivacy: lines[3]
        )
        let rules = IABConsentRules()
        let denial = rules.requestDenial(strings, host: .granted)
        let partners = rules.partnerRules(for: strings)
        for vendor in [nil, 1, 2, 3, 755] as [Int?] {
            let refused = partners.denial(for: PartnerConsentRequirements(tcfVendorID: vendor, gppSkipSections: [2, 6, 7]))
            if let refused { #expect(!refused.detail.isEmpty) }
        }
        // A malformed seed is refused as malformed, by its decoder and by the rules, never trapped.
        if name.hasPrefix("malformed-") {
            let reasons = [denial?.reason, partners.requestDenial?.reason]
            #expect(reasons.contains(.malformedConsent), "\(name): \(reasons)")
        }
        if let tcf = lines[0], !name.hasPrefix("malformed-") {
            #expect(throws: Never.self) { _ = try TCString(decoding: tcf) }
        }
        if let gpp = lines[1], !name.hasPrefix("malformed-") {
            #expect(throws: Never.self) { _ = try GPPString(decoding: gpp) }
        }
    }

    @Test("The seeds decode to what their sources say")
    func knownValues() throws {
        let spec = try TCString(decoding: #require(Self.signals("tcf-spec-vendors-2-6-8.txt")[0]))
        #expect([2, 6, 8].allSatisfy(spec.vendorConsents.contains))
        #expect(!spec.vendorConsents.contains(3))
        #expect(spec.purposeConsents == [1, 2, 3])
        let noPurposeOne = try TCString(decoding: #require(Self.signals("tcf-no-purpose-1.txt")[0]))
        #expect(!noPurposeOne.purposeConsents.contains(1))
        let usnat = try GPPString(decoding: #require(Self.signals("gpp-usnat-no-opt-out.txt")[1]))
        #expect(usnat.sectionIDs == [6, 7])
        #expect(throws: ConsentStringError.self) { try TCString(decoding: #require(Self.signals("malformed-tcf-short.txt")[0])) }
        #expect(throws: ConsentStringError.self) { try USPrivacyString(decoding: #require(Self.signals("malformed-usp.txt")[3])) }

        // Everything at once: TCF applies (vendor 2 consented, 3 not), section 7 has no opt-out.
        let all = try Self.signals("everything.txt")
        let strings = ConsentStrings(tcf: all[0], gpp: all[1], gppSectionIDs: [2, 7], usPrivacy: all[3])
        let rules = IABConsentRules()
        #expect(rules.requestDenial(strings, host: .granted) == nil)
        let partners = rules.partnerRules(for: strings)
        #expect(partners.denial(for: PartnerConsentRequirements(tcfVendorID: 2)) == nil)
        #expect(partners.denial(for: PartnerConsentRequirements(tcfVendorID: 3))?.reason == .tcfConsent)
        #expect(partners.denial(for: PartnerConsentRequirements(tcfVendorID: 2, gppSkipSections: [7]))?.reason == .gppSection)
    }
}
