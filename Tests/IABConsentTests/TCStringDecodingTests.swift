import IABConsent
import Testing

/// TC strings from the IAB's own encoders, test suites and specification, decoded field by
/// field. Each expectation is what the cited source asserts (or, where marked, what an
/// independent bit-by-bit decode of the published string gives).
@Suite struct TCStringDecodingTests {
    struct Expected: Sendable, CustomStringConvertible {
        var string: String
        var source: String
        var cmpID: Int?
        var purposeConsents: Set<Int>?
        var purposeLegitimateInterests: Set<Int>?
        var vendorConsents: [Int]?
        var vendorLegitimateInterests: [Int]?
        var description: String { source }
    }

    static let published: [Expected] = [
        // InteractiveAdvertisingBureau/iabtcf-java,
        // iabtcf-decoder/src/test/java/com/iabtcf/decoder/TCStringV2Test.java
        // testCanConstructTCModelFromBase64String (made with https://www.iabtcf.com/#/encode).
        Expected(
            string: "COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA",
            source: "iabtcf-java TCStringV2Test.testCanConstructTCModelFromBase64String",
            cmpID: 675,
            purposeConsents: [2, 10],
            purposeLegitimateInterests: [2, 9]
        ),
        // Same file, testConstructConsentsFromBitFields: bit-field vendor sections.
        Expected(
            string: "COrEAV4OrXx94ACABBENAHCIAD-AAAAAAACAAxAAAAgAIAwgAgAAAAEAgQAAAAAEAYQAQAAAACAAAABAAA",
            source: "iabtcf-java TCStringV2Test.testConstructConsentsFromBitFields",
            purposeConsents: [3, 4, 5, 6, 7, 8, 9],
            vendorConsents: [23, 37, 47, 48, 53, 65, 98],
            vendorLegitimateInterests: [37, 47, 48, 53, 65, 98, 129]
        ),
        // Same file, testCanParseRangeEncodedVendorLegitimateInterests: range-encoded LI.
        Expected(
            string: "COv__-wOv__-wC2AAAENAPCgAAAAAAAAAAAAA_wAQA_gEBABAEAAAA",
            source: "iabtcf-java TCStringV2Test.testCanParseRangeEncodedVendorLegitimateInterests",
            vendorLegitimateInterests: [128]
        ),
        // Same file, testRange: range-encoded vendor consents, two entries and one.
        Expected(
            string:
                "COwBOpCOwBOpCLqAAAENAPCAAAAAAAAAAAAAFfwAYFfAV-BVkAGBVYFWAAA.IFoEUQQgAIQwgIwQABAEAAAAOIAACAIAAAAQAIAgEAACEAAAAAgAQBAAAAAAAGBAAgAAAAAAAFAAECAAAgAAQARAEQAAAAAJAAIAAgAAAYQEAAAQmAgBC3ZAYzUw",
            source: "iabtcf-java TCStringV2Test.testRange (2 ranges)",
            vendorConsents: [702, 703]
        ),
        Expected(
            string:
                "COwBOpCOwBOpCLqAAAENAPCAAAAAAAAAAAAAFfwAQFfgUbABAUaAAA.IFoEUQQgAIQwgIwQABAEAAAAOIAACAIAAAAQAIAgEAACEAAAAAgAQBAAAAAAAGBAAgAAAAAAAFAAECAAAgAAQARAEQAAAAAJAAIAAgAAAYQEAAAQmAgBC3ZAYzUw",
            source: "iabtcf-java TCStringV2Test.testRange (1 range)",
            vendorConsents: [703]
        ),
        // Same file, testPurposesConsent (the source asserts purposes 1 and 2 are among them).
        Expected(
            string: "COwxsONOwxsONKpAAAENAdCAAMAAAAAAAAAAAAAAAAAA",
            source: "iabtcf-java TCStringV2Test.testPurposesConsent",
            purposeConsents: [1, 2]
        ),
        // InteractiveAdvertisingBureau/GDPR-Transparency-and-Consent-Framework, TCFv2/IAB Tech Lab -
        // Consent string and vendor list formats v2.md, the TC-string-in-a-URL example. The spec gives
        // no decoding; these values come from an independent decode of its bits.
        Expected(
            string: "COvFyGBOvFyGBAbAAAENAPCAAOAAAAAAAAAAAEEUACCKAAA",
            source: "TCF v2 specification URL example (independent decode)",
            cmpID: 27,
            purposeConsents: [1, 2, 3],
            vendorConsents: [2, 6, 8],
            vendorLegitimateInterests: [2, 6, 8]
        ),
        // IABTechLab/iabgpp-es, modules/cmpapi/test/GppModel.test.ts, "should decode tcfeuv2
        // sections": CmpId 880, nothing consented.
        Expected(
            string: "CPSG_8APSG_8ANwAAAENAwCAAAAAAAAAAAAAAAAAAAAA.QAAA.IAAA",
            source: "iabgpp-es GppModel.test tcfeuv2 section",
            cmpID: 880,
            purposeConsents: [],
            vendorConsents: []
        ),
    ]

    @Test("Published TC strings decode to what their sources say", arguments: published)
    func publishedStrings(expected: Expected) throws {
        let string = try TCString(decoding: expected.string)
        #expect(string.version == 2)
        if let cmpID = expected.cmpID { #expect(string.cmpID == cmpID) }
        if let purposes = expected.purposeConsents {
            // testPurposesConsent only asserts containment; the others give the whole set.
            if expected.source.hasSuffix("testPurposesConsent") {
                #expect(purposes.isSubset(of: string.purposeConsents))
            } else {
                #expect(string.purposeConsents == purposes)
            }
        }
        if let purposes = expected.purposeLegitimateInterests { #expect(string.purposeLegitimateInterests == purposes) }
        if let vendors = expected.vendorConsents { #expect(string.vendorConsents.ids == vendors) }
        if let vendors = expected.vendorLegitimateInterests { #expect(string.vendorLegitimateInterests.ids == vendors) }
    }

    @Test("Every core field of the iabtcf-java reference string")
    func everyCoreField() throws {
        // iabtcf-java TCStringV2Test.testCanConstructTCModelFromBase64String asserts each of these.
        let string = try TCString(decoding: "COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA")
        #expect(string.created == .seconds(1_580_058_060))  // 2020-01-26T17:01:00Z
        #expect(string.lastUpdated == .seconds(1_612_285_260))  // 2021-02-02T17:01:00Z
        #expect(string.cmpVersion == 2)
        #expect(string.consentScreen == 1)
        #expect(string.vendorListVersion == 15)
        #expect(string.policyVersion == 2)
        #expect(string.consentLanguage == "EN")
        #expect(string.publisherCountryCode == "AA")
        #expect(!string.isServiceSpecific)
        #expect(string.purposeOneTreatment)
        #expect(!string.useNonStandardStacks)
        #expect(string.specialFeatureOptIns == [1])
        #expect(string.publisherRestrictions.isEmpty)
        #expect(string.disclosedVendors == nil)
    }

    @Test("Disclosed, allowed and publisher TC segments")
    func optionalSegments() throws {
        // iabtcf-java TCStringV2Test.testCanParseDisclosedAndAllowedVendors and testCanParseAllParts
        // (the publisher TC segment there ends in '=' padding).
        let string = try TCString(
            decoding:
                "COrEAV4OrXx94ACABBENAHCIAD-AAAAAAACAAxAAAAgAIAwgAgAAAAEAgQAAAAAEAYQAQAAAACAAAABAAA.IBAgAAAgAIAwgAgAAAAEAAAACA.QAagAQAgAIAwgA.cAAAAAAAITg="
        )
        #expect(string.allowedVendors?.ids == [12, 23, 37, 47, 48, 53])
        #expect(string.disclosedVendors?.ids == [23, 37, 47, 48, 53, 65, 98, 129])
        #expect(string.publisherPurposes?.consents.count == 1)
    }

    @Test("Publisher restrictions, with a vendor encoded twice")
    func publisherRestrictions() throws {
        // InteractiveAdvertisingBureau/iabtcf-es, modules/core/test/ReportedIssues.test.ts, issue 201
        // "unable to decode valid TCF2 String": the restriction (purpose 1, require consent) lists
        // vendors [7, 20, 71, 122, 140, 183], vendor 7 twice in the encoding.
        let string = try TCString(
            decoding:
                "CO4VGswO4VGswAfZCBDEAzCsAP_AAH_AAAigGUNf_X9fb2vj-_599_t0eY1f9_63t-wzjheMs-8NyZ-X_J4Wv2MyvB34JqQKGRgkunLBAQdtHGncTQgBwIlViTLMY02MjzNKJrJEilsbe2dYGH9vn8XT_ZKZ70-_v__7v3___33_5Ayhr_6_r7e18f3_Pvv9ujzGr_v_W9v2GccLxln3huTPy_5PC1-xmV4O_BNSBQyMEl05YICDto407iaEAOBEqsSZZjGmxkeZpRNZIkUtjb2zrAw_t8_i6f7JTPen39___d-___--__ICgKAOAAcAA4AFAAjgB6AEYALcGACAW0AtoJAHAAOAAcACgARwA9ACMAFuFABALaAW0GgDgAHAAOABQAI4AegBGAC3DgAgFtALaEQBwADgAHAAoAEcAPQAjABbiQAQC2gFtCoA4ABwADgAUACOAHoARgAtxYAIBbQC2hkAcAA4ABwAKABHAD0AIwAW40AEAtoBbQ6AOAAcAA4AFAAjgB6AEYALceACAW0AtohAHAAOAAcACgARwA9ACMAFuRABALaAW0SgDgAHAAOABQAI4AegBGAC3JgAgFtALaKQBwADgAHAAoAEcAPQAjABblQAQC2gFtA"
        )
        let requireConsent = string.publisherRestrictions.filter { $0.purposeID == 1 && $0.type == .requireConsent }
        #expect(requireConsent.count == 1)
        #expect(requireConsent.first?.vendors.ids == [7, 20, 71, 122, 140, 183])
        // The same string, independently decoded: purpose 1 requires legitimate interest for vendor 730.
        let requireLI = string.publisherRestrictions.filter {
            $0.purposeID == 1 && $0.type == .requireLegitimateInterest
        }
        #expect(requireLI.first?.vendors.ids == [730])
        #expect(string.publisherRestrictions.count == 20)
    }

    @Test("A TC string's verdict for one vendor")
    func missingConsent() throws {
        // TCF v2 specification URL example: purposes 1-3, vendors 2, 6 and 8 consented.
        let spec = try TCString(decoding: "COvFyGBOvFyGBAbAAAENAPCAAOAAAAAAAAAAAEEUACCKAAA")
        #expect(spec.missingConsent(forVendor: 2) == nil)
        #expect(spec.missingConsent(forVendor: 3) == "vendor 3 has no consent")
        // iabtcf-java testConstructConsentsFromBitFields: vendor 23 consented, purpose 1 not.
        let noPurposeOne = try TCString(
            decoding: "COrEAV4OrXx94ACABBENAHCIAD-AAAAAAACAAxAAAAgAIAwgAgAAAAEAgQAAAAAEAYQAQAAAACAAAABAAA"
        )
        #expect(
            noPurposeOne.missingConsent(forVendor: 23)
                == "purpose 1 (store and/or access information on a device) has no consent"
        )
        // Synthetic (encoded for this test): purposes 1-2, vendors 5 and 9, and purpose 1 not
        // allowed for vendor 5 by the publisher.
        let restricted = try TCString(decoding: "CO5rKAAO5rKAAAHABBENEsEAAMAAAAAAAAYgAEgiAAAAEEABAAK")
        #expect(restricted.vendorConsents.ids == [5, 9])
        #expect(restricted.missingConsent(forVendor: 5) == "the publisher does not allow purpose 1 for vendor 5")
        #expect(restricted.missingConsent(forVendor: 9) == nil)
    }

    struct Malformed: Sendable, CustomStringConvertible {
        var string: String
        var kind: ConsentStringError.Kind
        var message: String
        var description: String { message }
    }

    static let malformed: [Malformed] = [
        // iabtcf-es ReportedIssues.test.ts, issue 142 "it should throw an error if the bitfield
        // length does not match the maxId": the DisclosedVendors segment's bit field runs out.
        Malformed(
            string:
                "CLSYjTaOngnCIAOABBENAXCMAGOAABBAAA7IA5n-m7fP6_3fbqVv6E__PoA5Aqff3aJx8tv_1967rfnQEQoAIAAQCrwkAEABAcACABIMACAAuApEVABABUSABgBCAVSAtIoACACIArYQAHACgAFgAVwBJgDcAI7AWgMAAgBiKgAgBMgFfKQAQBRkQAQA4AFiBAAoA-AEVAJlAVgAtYcACAJcAr4eABAK8OgBgFzAOmAqwgABAWyA.IFukWSQh",
            kind: .truncated,
            message: "TC string segment 2: disclosed vendors bit field of 733 vendors ends past the string"
        ),
        // iabtcf-es ReportedIssues.test.ts, issue 156: a TCF v1.1 string.
        Malformed(
            string:
                "BOhwdphOxFC7tAHABBFRC--AAAAuhr_7__7-_9_-_f__9uj3Or_v_f__32ccL59v_h_7v-_7fi_20nV4u_1vft9yfk1-5ctDztp507iakivXmqdeb9v_nz3_5pxP78k89r7337Ew_v8_v-b7BCON_YxEiA",
            kind: .unsupportedVersion,
            message: "TC string version 1 is not supported; only TCF v2 strings (version 2) are"
        ),
        // iabtcf-java TCStringDecoderTest.testReadBeyondBuffer: "Bg" is far too short.
        Malformed(
            string: "Bg",
            kind: .unsupportedVersion,
            message: "TC string version 1 is not supported; only TCF v2 strings (version 2) are"
        ),
        Malformed(string: "Cg", kind: .truncated, message: "TC string segment 1: Created ends past the string"),
        Malformed(string: "", kind: .empty, message: "TC string is empty"),
        Malformed(
            string: "COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAA+AAA",
            kind: .invalidCharacter,
            message: "TC string segment 1: '+' at offset 40 is not base64url (A-Z, a-z, 0-9, '-', '_')"
        ),
        // The iabtcf-java bit-field string cut short inside its vendor legitimate interests.
        Malformed(
            string: "COrEAV4OrXx94ACABBENAHCIAD-AAAAAAACAAxAAAAgAIAwgAgAAAAEAgQAAAAAE",
            kind: .truncated,
            message: "TC string segment 1: vendor legitimate interests bit field of 129 vendors ends past the string"
        ),
        // The iabtcf-java range string (one entry, 702-703) cut after its vendor consents.
        Malformed(
            string: "COwBOpCOwBOpCLqAAAENAPCAAAAAAAAAAAAAFfwAYFfAV-B",
            kind: .truncated,
            message: "TC string segment 1: vendor legitimate interests MaxVendorId ends past the string"
        ),
        // Synthetic: the range-encoded string of vendors 3 and 10 cut inside its second entry.
        Malformed(
            string: "CO5rKAAO5rKAAAHABBENEsEAAIAAAAAAAAYgAFQAgABg",
            kind: .truncated,
            message: "TC string segment 1: vendor consents range entry 2 ends past the string"
        ),
        Malformed(
            string: "COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA.",
            kind: .empty,
            message: "TC string segment 2 is empty"
        ),
        Malformed(
            string: "COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA.AAAA",
            kind: .invalidValue,
            message:
                "TC string segment 2: segment type 0; expected 1 (disclosed vendors), 2 (allowed vendors) or 3 (publisher TC)"
        ),
        Malformed(
            string: "COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAA\nX-Injected: 1",
            kind: .invalidCharacter,
            message: "TC string segment 1: byte 0xA at offset 40 is not base64url (A-Z, a-z, 0-9, '-', '_')"
        ),
        Malformed(
            string: String(repeating: "A", count: 40_000),
            kind: .tooLong,
            message: "TC string is 40000 bytes; at most 32768"
        ),
    ]

    @Test("Malformed TC strings are refused with an error naming the problem", arguments: malformed)
    func malformedStrings(example: Malformed) {
        #expect {
            _ = try TCString(decoding: example.string)
        } throws: { error in
            guard let error = error as? ConsentStringError else { return false }
            return error.kind == example.kind && error.message == example.message
        }
    }

    @Test("A range that ends before it starts, or past MaxVendorId, is malformed")
    func invalidRanges() throws {
        // Synthetic: the range-encoded string of vendors 3 and 10 (MaxVendorId 10) with its
        // MaxVendorId field lowered to 9 (bits 213-228).
        let valid = try TCString(decoding: "CO5rKAAO5rKAAAHABBENEsEAAIAAAAAAAAYgAFQAgABgAKAAAAA")
        #expect(valid.vendorConsents.ids == [3, 10])
        #expect(valid.vendorConsents.maxVendorID == 10)
        #expect {
            _ = try TCString(decoding: "CO5rKAAO5rKAAAHABBENEsEAAIAAAAAAAAYgAEwAgABgAKAAAAA")
        } throws: { error in
            (error as? ConsentStringError)?.message
                == "TC string segment 1: vendor consents range entry 2 covers vendors 10-10 (MaxVendorId 9); "
                + "IDs start at 1 and a range may not end before it starts or past MaxVendorId"
        }
    }
}
