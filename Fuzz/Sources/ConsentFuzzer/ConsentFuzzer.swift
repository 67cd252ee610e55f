import FuzzDriver
import IABConsent
import PullSyncConsent
import PullSyncKernel


/// libFuzzer's entry: a request's consent signals, one per line:
/// `TC string \n GPP string \n gpp_sid \n US privacy string` (a missing line is a signal not
/// sent). Every decoder and the consent rules must answer or throw `ConsentStringError`: no trap,
/// no hang, no leak; a vendor the decoded TC string consents to must be one a vendor-consent
/// partner may be called for. `Tests/IABConsentTests/FuzzCorpusTests.swift` replays the corpus.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConsent(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    let text = String(decoding: bytes, as: UTF8.self)
    let lines = text.split(separator: "\n", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
    func line(_ index: Int) -> String? { index < lines.count && !lines[index].isEmpty ? lines[index] : nil }

    // The decoders on their own, and on the whole input.
    let tc = try? TCString(decoding: line(0) ?? text)
    _ = try? GPPString(decoding: line(1) ?? text)
    _ = try? USPrivacyString(decoding: line(3) ?? text)
    for section in [7, 8, 9, 10, 11, 12] { _ = try? USOptOuts.decode(sectionID: section, line(0) ?? text) }
    if let tc {
        for vendor in [1, 2, 3, 755, 65_535] where tc.vendorConsents.contains(vendor) {
            _ = tc.missingConsent(forVendor: vendor)
        }
    }

    // The rules the kernel applies, as a request with these signals would meet them.
    let strings = ConsentStrings(
        tcf: line(0),
        gpp: line(1),
        gppSectionIDs: line(2).map { $0.split(separator: ",").compactMap { Int($0) } } ?? [],
        usPrivacy: line(3)
    )
    let rules = IABConsentRules()
    _ = rules.requestDenial(strings, host: .granted)
    let partners = rules.partnerRules(for: strings)
    if partners.requestDenial == nil {
        for vendor in [nil, 1, 2, 3, 755] as [Int?] {
            let denial = partners.denial(for: PartnerConsentRequirements(tcfVendorID: vendor, gppSkipSections: [2, 6, 7]))
            if let denial { precondition(!denial.detail.isEmpty, "a denial says why") }
        }
    }
    return 0
}

@main
enum ConsentFuzzerMain {
    static func main() { runLibFuzzer { fuzzConsent($0, $1) } }
}
