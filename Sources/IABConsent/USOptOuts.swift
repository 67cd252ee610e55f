/// The opt-outs pullsync reads from one GPP US section: the national section (7) and the state
/// sections of California (8), Virginia (9), Colorado (10), Utah (11) and Connecticut (12).
///
/// Each section starts with a 6-bit version and 2-bit notice and opt-out fields (0 not
/// applicable, 1 opted out, 2 did not opt out); only the fields up to the opt-outs are read.
/// Sections 7, 8, 10 and 12 may carry a GPC sub-section (`core.gpc`: a 2-bit type, 1, and the
/// GPC bit). Layouts: the IAB GPP US section specifications (Sections/US-National and
/// Sections/US-States in InteractiveAdvertisingBureau/Global-Privacy-Platform), as encoded by
/// IABTechLab/iabgpp-es (`UsNatField`, `UsCaField`, … field orders; 2-bit fields).
public struct USOptOuts: Sendable, Hashable {
    /// The section's GPP ID.
    public var sectionID: Int
    /// `SaleOptOut` is 1.
    public var saleOptOut: Bool
    /// `SharingOptOut` is 1 (only sections 7 and 8 have the field).
    public var sharingOptOut: Bool
    /// The section's GPC sub-section says the browser sent Global Privacy Control.
    public var globalPrivacyControl: Bool

    /// Whether the section opts the user out of sale or sharing (GPC counts as such an opt-out).
    public var optedOut: Bool { saleOptOut || sharingOptOut || globalPrivacyControl }

    private struct Layout {
        var name: String
        var versions: ClosedRange<Int>
        /// Bit offsets of the 2-bit fields.
        var saleOptOut: Int
        var sharingOptOut: Int?
        var hasGPCSegment: Bool
    }

    private static let layouts: [Int: Layout] = [
        // Version(6) SharingNotice SaleOptOutNotice SharingOptOutNotice TargetedAdvertisingOptOutNotice
        // SensitiveDataProcessingOptOutNotice SensitiveDataLimitUseNotice SaleOptOut SharingOptOut …
        7: Layout(name: "usnat", versions: 1...2, saleOptOut: 18, sharingOptOut: 20, hasGPCSegment: true),
        // Version(6) SaleOptOutNotice SharingOptOutNotice SensitiveDataLimitUseNotice SaleOptOut SharingOptOut …
        8: Layout(name: "usca", versions: 1...1, saleOptOut: 12, sharingOptOut: 14, hasGPCSegment: true),
        // Version(6) SharingNotice SaleOptOutNotice TargetedAdvertisingOptOutNotice SaleOptOut …
        9: Layout(name: "usva", versions: 1...1, saleOptOut: 12, sharingOptOut: nil, hasGPCSegment: false),
        10: Layout(name: "usco", versions: 1...1, saleOptOut: 12, sharingOptOut: nil, hasGPCSegment: true),
        // Version(6) SharingNotice SaleOptOutNotice TargetedAdvertisingOptOutNotice
        // SensitiveDataProcessingOptOutNotice SaleOptOut …
        11: Layout(name: "usut", versions: 1...1, saleOptOut: 14, sharingOptOut: nil, hasGPCSegment: false),
        12: Layout(name: "usct", versions: 1...1, saleOptOut: 12, sharingOptOut: nil, hasGPCSegment: true),
    ]

    /// The US section IDs decoded (7 to 12). Other US state sections are not read; skip partners
    /// in them with a manifest's `gpp_skip_sections`.
    public static var decodedSectionIDs: [Int] { layouts.keys.sorted() }

    /// The GPP API prefix of a decoded US section (`usnat`, `usca`, …).
    public static func name(ofSection id: Int) -> String? { layouts[id]?.name }

    /// Decodes section `sectionID`'s text; `nil` when it is not one of ``decodedSectionIDs``.
    public static func decode(sectionID: Int, _ text: some StringProtocol) throws(ConsentStringError) -> USOptOuts? {
        guard let layout = layouts[sectionID] else { return nil }
        let label = "GPP section \(sectionID) (\(layout.name))"
        let segments = Substring(text).split(separator: ".", omittingEmptySubsequences: false)
        guard !segments[0].isEmpty else { throw ConsentStringError(.empty, "\(label) is empty") }
        var core: ConsentBits
        do {
            core = try ConsentBits(base64URL: segments[0])
        } catch {
            throw ConsentStringError(
                .invalidCharacter,
                "\(label): the character at offset \(error.offset) is not base64url"
            )
        }
        guard let version = core.read(6) else {
            throw ConsentStringError(.truncated, "\(label): Version ends past the string")
        }
        guard layout.versions.contains(version) else {
            throw ConsentStringError(.unsupportedVersion, "\(label): version \(version) is not supported")
        }
        func field(_ name: String, at offset: Int) throws(ConsentStringError) -> Int {
            var bits = core
            guard bits.read(offset - bits.position) != nil, let value = bits.read(2) else {
                throw ConsentStringError(.truncated, "\(label): \(name) ends past the string")
            }
            guard value != 3 else {
                throw ConsentStringError(.invalidValue, "\(label): \(name) is 3; expected 0, 1 or 2")
            }
            return value
        }
        let sale = try field("SaleOptOut", at: layout.saleOptOut)
        let sharing = try layout.sharingOptOut.map { offset throws(ConsentStringError) in
            try field("SharingOptOut", at: offset)
        }
        var gpc = false
        if layout.hasGPCSegment, segments.count > 1 {
            var bits: ConsentBits
            do {
                bits = try ConsentBits(base64URL: segments[1])
            } catch {
                throw ConsentStringError(.invalidCharacter, "\(label): GPC sub-section is not base64url")
            }
            guard let type = bits.read(2), let flag = bits.read(1) else {
                throw ConsentStringError(.truncated, "\(label): GPC sub-section ends past the string")
            }
            guard type == 1 else {
                throw ConsentStringError(.invalidValue, "\(label): GPC sub-section type \(type); expected 1")
            }
            gpc = flag == 1
        }
        return USOptOuts(
            sectionID: sectionID,
            saleOptOut: sale == 1,
            sharingOptOut: sharing == 1,
            globalPrivacyControl: gpc
        )
    }
}
