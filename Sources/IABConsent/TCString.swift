/// A decoded IAB TCF v2 Transparency & Consent string (TCF v2.0 to v2.2): the
/// `euconsent-v2` cookie, or section 2 of a GPP string.
///
/// Every segment is decoded and checked, so a malformed string is refused as a whole (and then
/// counts as no consent). Decoding is bounded: strings over 32 KiB are refused unread, and no
/// field can make the decoder allocate more than the string's own size in bits.
///
/// Format: IAB Tech Lab, "Consent string and vendor list formats v2"
/// (InteractiveAdvertisingBureau/GDPR-Transparency-and-Consent-Framework, TCFv2/).
public struct TCString: Sendable, Equatable {
    /// A publisher restriction on one purpose for some vendors.
    public struct PublisherRestriction: Sendable, Equatable {
        /// The restriction's type (2 bits).
        public enum RestrictionType: Int, Sendable, Hashable {
            /// Purpose flatly not allowed by the publisher.
            case notAllowed = 0
            /// The vendor must rely on consent for the purpose.
            case requireConsent = 1
            /// The vendor must rely on legitimate interest for the purpose.
            case requireLegitimateInterest = 2
            /// Reserved by the specification.
            case undefined = 3
        }

        /// The purpose restricted (1 to 63).
        public var purposeID: Int
        /// What the publisher requires of the vendors for the purpose.
        public var type: RestrictionType
        /// The vendors it applies to.
        public var vendors: VendorSet
    }

    /// The publisher's own purposes (the optional Publisher TC segment).
    public struct PublisherPurposes: Sendable, Equatable {
        /// Purposes (1 to 24) the user consented to for the publisher.
        public var consents: Set<Int>
        /// Purposes (1 to 24) whose legitimate interest the publisher established.
        public var legitimateInterests: Set<Int>
        /// The publisher's custom purposes with consent (1 to `NumCustomPurposes`).
        public var customConsents: Set<Int>
        /// The publisher's custom purposes with legitimate interest.
        public var customLegitimateInterests: Set<Int>
    }

    /// Always 2.
    public var version: Int
    /// When the string was first created, as time since the Unix epoch (to the decisecond).
    public var created: Duration
    /// When it was last updated, as time since the Unix epoch.
    public var lastUpdated: Duration
    /// The ID of the consent management platform that last updated it.
    public var cmpID: Int
    /// That CMP's version.
    public var cmpVersion: Int
    /// The CMP screen on which consent was given.
    public var consentScreen: Int
    /// Two upper-case letters, e.g. `EN`.
    public var consentLanguage: String
    /// The Global Vendor List version the string was made with.
    public var vendorListVersion: Int
    /// The TCF policy version (2 for TCF v2.0, 4 for v2.2).
    public var policyVersion: Int
    /// Service-specific (stored by the site) rather than global.
    public var isServiceSpecific: Bool
    /// The CMP used non-standard stack descriptions.
    public var useNonStandardStacks: Bool
    /// Special features opted in to (1 to 12).
    public var specialFeatureOptIns: Set<Int>
    /// Purposes with the user's consent (1 to 24).
    public var purposeConsents: Set<Int>
    /// Purposes whose legitimate interest was established and not objected to (1 to 24).
    public var purposeLegitimateInterests: Set<Int>
    /// `true`: purpose 1 was not disclosed at all (some jurisdictions).
    public var purposeOneTreatment: Bool
    /// Two upper-case letters, e.g. `DE`.
    public var publisherCountryCode: String
    /// Vendors with the user's consent.
    public var vendorConsents: VendorSet
    /// Vendors whose legitimate interest was established.
    public var vendorLegitimateInterests: VendorSet
    /// The publisher's restrictions on purposes, per vendor.
    public var publisherRestrictions: [PublisherRestriction]
    /// The DisclosedVendors segment, when present.
    public var disclosedVendors: VendorSet?
    /// The AllowedVendors segment, when present.
    public var allowedVendors: VendorSet?
    /// The Publisher TC segment, when present.
    public var publisherPurposes: PublisherPurposes?

    /// The longest string decoded (real strings run from a few hundred to a few thousand
    /// characters; a cookie holds at most 4 KiB).
    public static let maximumLength = 32 * 1024

    /// Decodes `text`.
    ///
    /// - Throws: a ``ConsentStringError`` naming the segment and field at fault.
    public init(decoding text: some StringProtocol) throws(ConsentStringError) {
        guard !text.isEmpty else { throw ConsentStringError(.empty, "TC string is empty") }
        guard text.utf8.count <= Self.maximumLength else {
            throw ConsentStringError(.tooLong, "TC string is \(text.utf8.count) bytes; at most \(Self.maximumLength)")
        }
        let segments = Substring(text).split(separator: ".", omittingEmptySubsequences: false)
        var core = try SegmentReader(segments[0], number: 1)
        let version = try core.int(6, "version")
        guard version == 2 else {
            throw ConsentStringError(
                .unsupportedVersion,
                "TC string version \(version) is not supported; only TCF v2 strings (version 2) are"
            )
        }
        self.version = version
        created = .milliseconds(Int64(try core.int(36, "Created")) * 100)
        lastUpdated = .milliseconds(Int64(try core.int(36, "LastUpdated")) * 100)
        cmpID = try core.int(12, "CmpId")
        cmpVersion = try core.int(12, "CmpVersion")
        consentScreen = try core.int(6, "ConsentScreen")
        consentLanguage = try core.letters("ConsentLanguage")
        vendorListVersion = try core.int(12, "VendorListVersion")
        policyVersion = try core.int(6, "TcfPolicyVersion")
        isServiceSpecific = try core.flag("IsServiceSpecific")
        useNonStandardStacks = try core.flag("UseNonStandardStacks")
        specialFeatureOptIns = try core.bitSet(12, "SpecialFeatureOptIns")
        purposeConsents = try core.bitSet(24, "PurposesConsent")
        purposeLegitimateInterests = try core.bitSet(24, "PurposesLITransparency")
        purposeOneTreatment = try core.flag("PurposeOneTreatment")
        publisherCountryCode = try core.letters("PublisherCC")
        vendorConsents = try core.vendorSection("vendor consents")
        vendorLegitimateInterests = try core.vendorSection("vendor legitimate interests")
        let restrictionCount = try core.int(12, "NumPubRestrictions")
        var restrictions: [PublisherRestriction] = []
        for index in 0..<restrictionCount {
            let name = "publisher restriction \(index + 1)"
            let purposeID = try core.int(6, "\(name) purpose")
            let type = PublisherRestriction.RestrictionType(rawValue: try core.int(2, "\(name) type"))!
            let vendors = try core.rangeSection(name, maxVendorID: nil)
            restrictions.append(PublisherRestriction(purposeID: purposeID, type: type, vendors: vendors))
        }
        publisherRestrictions = restrictions

        disclosedVendors = nil
        allowedVendors = nil
        publisherPurposes = nil
        for (offset, text) in segments.dropFirst().enumerated() {
            var segment = try SegmentReader(text, number: offset + 2)
            switch try segment.int(3, "SegmentType") {
            case 1:
                disclosedVendors = try segment.vendorSection("disclosed vendors")
            case 2:
                allowedVendors = try segment.vendorSection("allowed vendors")
            case 3:
                let consents = try segment.bitSet(24, "PubPurposesConsent")
                let legitimateInterests = try segment.bitSet(24, "PubPurposesLITransparency")
                let customCount = try segment.int(6, "NumCustomPurposes")
                publisherPurposes = PublisherPurposes(
                    consents: consents,
                    legitimateInterests: legitimateInterests,
                    customConsents: try segment.bitSet(customCount, "CustomPurposesConsent"),
                    customLegitimateInterests: try segment.bitSet(customCount, "CustomPurposesLITransparency")
                )
            case let type:
                throw ConsentStringError(
                    .invalidValue,
                    "TC string segment \(offset + 2): segment type \(type); expected 1 (disclosed vendors), "
                        + "2 (allowed vendors) or 3 (publisher TC)"
                )
            }
        }
    }

    /// What keeps `vendorID` from being called for pull sync under this string, or `nil` when
    /// nothing does: purpose 1 ("store and/or access information on a device") needs the user's
    /// consent, the vendor needs the user's consent, and the publisher must not have restricted
    /// purpose 1 for the vendor (not allowed, or legitimate interest required: purpose 1 can
    /// only rest on consent).
    public func missingConsent(forVendor vendorID: Int) -> String? {
        if !purposeConsents.contains(1) {
            return "purpose 1 (store and/or access information on a device) has no consent"
        }
        if !vendorConsents.contains(vendorID) { return "vendor \(vendorID) has no consent" }
        for restriction in publisherRestrictions
        where restriction.purposeID == 1 && restriction.vendors.contains(vendorID) {
            switch restriction.type {
            case .notAllowed:
                return "the publisher does not allow purpose 1 for vendor \(vendorID)"
            case .requireLegitimateInterest:
                return "the publisher requires legitimate interest, not consent, for purpose 1 for vendor \(vendorID)"
            case .requireConsent, .undefined:
                continue
            }
        }
        return nil
    }
}

/// Reads the fields of one TC string segment, naming the segment and field in every error.
private struct SegmentReader {
    var bits: ConsentBits
    let number: Int

    init(_ text: Substring, number: Int) throws(ConsentStringError) {
        guard !text.isEmpty else { throw ConsentStringError(.empty, "TC string segment \(number) is empty") }
        do {
            bits = try ConsentBits(base64URL: text)
        } catch {
            // Printable ASCII is quoted; anything else (a control or non-ASCII byte) is shown in hex.
            let byte = text.utf8.dropFirst(error.offset).first ?? 0
            let shown =
                byte >= 0x20 && byte < 0x7F
                ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16, uppercase: true))"
            throw ConsentStringError(
                .invalidCharacter,
                "TC string segment \(number): \(shown) at offset \(error.offset) is not base64url (A-Z, a-z, 0-9, '-', '_')"
            )
        }
        self.number = number
    }

    func truncated(_ field: String) -> ConsentStringError {
        ConsentStringError(.truncated, "TC string segment \(number): \(field) ends past the string")
    }

    mutating func int(_ width: Int, _ field: String) throws(ConsentStringError) -> Int {
        guard let value = bits.read(width) else { throw truncated(field) }
        return value
    }

    mutating func flag(_ field: String) throws(ConsentStringError) -> Bool {
        try int(1, field) == 1
    }

    /// `width` bits, one per ID from 1: the IDs whose bit is set.
    mutating func bitSet(_ width: Int, _ field: String) throws(ConsentStringError) -> Set<Int> {
        guard width <= bits.remaining else { throw truncated(field) }
        var result: Set<Int> = []
        for index in 0..<width where bits.readBit() == true {
            result.insert(index + 1)
        }
        return result
    }

    /// Two 6-bit letters, a=0 … z=25.
    mutating func letters(_ field: String) throws(ConsentStringError) -> String {
        let first = try int(6, field)
        let second = try int(6, field)
        guard first <= 25, second <= 25 else {
            throw ConsentStringError(
                .invalidValue,
                "TC string segment \(number): \(field) holds letter codes \(first) and \(second); each must be 0-25"
            )
        }
        return String(decoding: [UInt8(65 + first), UInt8(65 + second)], as: UTF8.self)
    }

    /// MaxVendorId, IsRangeEncoding, then a bit field or range entries.
    mutating func vendorSection(_ name: String) throws(ConsentStringError) -> VendorSet {
        let maxVendorID = try int(16, "\(name) MaxVendorId")
        if try flag("\(name) IsRangeEncoding") {
            return try rangeSection(name, maxVendorID: maxVendorID)
        }
        guard maxVendorID <= bits.remaining else {
            throw ConsentStringError(
                .truncated,
                "TC string segment \(number): \(name) bit field of \(maxVendorID) vendors ends past the string"
            )
        }
        var words = [UInt64](repeating: 0, count: (maxVendorID + 63) / 64)
        for index in 0..<maxVendorID where bits.readBit() == true {
            words[index / 64] |= 1 << UInt64(63 - index % 64)
        }
        return VendorSet(maxVendorID: maxVendorID, bits: words)
    }

    /// NumEntries, then that many single IDs or ranges. IDs start at 1; a range may not end
    /// before it starts, nor (in a vendor section) past MaxVendorId.
    mutating func rangeSection(_ name: String, maxVendorID: Int?) throws(ConsentStringError) -> VendorSet {
        let count = try int(12, "\(name) NumEntries")
        var ranges: [ClosedRange<Int>] = []
        ranges.reserveCapacity(count)
        for entry in 0..<count {
            let field = "\(name) range entry \(entry + 1)"
            let isRange = try flag(field)
            let start = try int(16, field)
            let end = isRange ? try int(16, field) : start
            guard start >= 1, end >= start, end <= maxVendorID ?? 65_535 else {
                let limit = maxVendorID.map { " (MaxVendorId \($0))" } ?? ""
                throw ConsentStringError(
                    .invalidValue,
                    "TC string segment \(number): \(field) covers vendors \(start)-\(end)\(limit); "
                        + "IDs start at 1 and a range may not end before it starts or past MaxVendorId"
                )
            }
            ranges.append(start...end)
        }
        return VendorSet(maxVendorID: maxVendorID ?? (ranges.map(\.upperBound).max() ?? 0), ranges: ranges)
    }
}
