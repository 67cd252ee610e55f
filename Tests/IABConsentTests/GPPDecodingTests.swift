import IABConsent
import Testing

/// GPP headers, US privacy strings and GPP US sections from the IAB's specifications and
/// reference encoder (IABTechLab/iabgpp-es), decoded.
@Suite struct GPPDecodingTests {
    @Test(
        "GPP headers list the sections that follow",
        arguments: [
            // InteractiveAdvertisingBureau/Global-Privacy-Platform, Core/Consent String Specification.md,
            // header examples 1-3 (the spec's own encodings, without the trailing padding character).
            ("DBABM~x", [2]),
            ("DBACNY~x~y", [2, 6]),
            ("DBABjw~x~y", [5, 6]),  // a range: 5 then 6
            // IABTechLab/iabgpp-es, modules/cmpapi/test/GppModel.test.ts.
            ("DBAA", []),
            ("DBABTA~1YNN", [6]),
            ("DBABMA~CPSG_8APSG_8ANwAAAENAwCAAAAAAAAAAAAAAAAAAAAA.QAAA.IAAA", [2]),
            (
                "DBACOeA~CPSG_8APSG_8ANwAAAENAwCAAAAAAAAAAAAAAAAAAAAA.QAAA.IAAA~CPSG_8APSG_8AAyACAENGdCgf_gfgAfgfgBgABABAAABAB4AACAC.fHHHA4444ao~1YNN",
                [2, 5, 6]
            ),
            (
                "DBACOaw~CPSG_8APSG_8AAAAAAENAACAAAAAAAAAAAAAAAAAAAAA.QAAA.IAAA~CPSG_8APSG_8AAAAAAENAACAAAAAAAAAAAAAAAAA.YAAAAAAAAAA~1---~BAAAAAAAAAA.QA~BAAAAAAA.QA~BAAAAAA~BAAAAAA.QA~BAAAAAAA~BAAAAAAA.QA",
                [2, 5, 6, 7, 8, 9, 10, 11, 12]
            ),
            // The GPP specification's example string (the issue's), EU TCF v2 only.
            ("DBABMA~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA", [2]),
        ]
    )
    func headers(string: String, ids: [Int]) throws {
        let gpp = try GPPString(decoding: string)
        #expect(gpp.sectionIDs == ids)
        #expect(gpp.sections.map(\.text) == Array(string.split(separator: "~").dropFirst().map(String.init)))
    }

    @Test("A section is found by its ID")
    func sectionLookup() throws {
        let gpp = try GPPString(decoding: "DBACNYA~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA~1YNN")
        #expect(gpp.section(2) == "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA")
        #expect(gpp.section(6) == "1YNN")
        #expect(gpp.section(7) == nil)
    }

    @Test(
        "Malformed GPP strings are refused with an error naming the problem",
        arguments: [
            ("", "GPP string is empty"),
            ("DBABMA", "GPP header lists 1 section but the string has 0"),
            ("DBACNYA~x", "GPP header lists 2 sections but the string has 1"),
            ("DBAA~x", "GPP header lists 0 sections but the string has 1"),
            // A TC string where a GPP string belongs: type 2, not 3.
            ("CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA", "GPP header: type 2; a GPP header has type 3"),
            ("DCAA", "GPP header: version 2 is not supported; only 1 is"),
            ("DBA", "GPP header: section count ends past the header"),
            ("DBAB", "GPP header: section entry 1 ends past the header"),
            ("DB*A~x", "GPP header: the character at offset 2 is not base64url (A-Z, a-z, 0-9, '-', '_')"),
            // A range whose start never ends (no "11" in 40 bits).
            ("DBABqqqqqqqq~x", "GPP header: section entry 1 is not a valid Fibonacci code"),
        ] as [(String, String)]
    )
    func malformed(string: String, message: String) {
        #expect {
            _ = try GPPString(decoding: string)
        } throws: { error in
            (error as? ConsentStringError)?.message == message
        }
    }

    @Test("A huge range is refused without expanding it")
    func hugeRange() {
        // Header: type 3, version 1, one entry, a range from 1 (Fibonacci code 11) to 1 + 832,040
        // (F(30), coded as 28 zeros, a one and the terminating one): far more sections than the string has.
        var bits = "000011" + "000001" + "000000000001" + "1" + "11"
        bits += String(repeating: "0", count: 28) + "1" + "1"
        while bits.count % 6 != 0 { bits += "0" }
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        var header = ""
        var index = bits.startIndex
        while index < bits.endIndex {
            let next = bits.index(index, offsetBy: 6)
            header.append(alphabet[Int(bits[index..<next], radix: 2)!])
            index = next
        }
        #expect {
            _ = try GPPString(decoding: header + "~x")
        } throws: { error in
            (error as? ConsentStringError)?.message == "GPP header lists 832041 sections but the string has 1"
        }
    }
}

@Suite struct USPrivacyStringTests {
    @Test(
        "US privacy strings",
        arguments: [
            // IAB CCPA/US Privacy String specification examples; "1YNN" also in iabgpp-es GppModel.test.ts.
            ("1YNN", USPrivacyString.Flag.yes, USPrivacyString.Flag.no, false),
            ("1YYN", .yes, .yes, true),
            ("1NYY", .no, .yes, true),
            ("1---", .notApplicable, .notApplicable, false),
            ("1yyn", .yes, .yes, true),
        ]
    )
    func decodes(string: String, notice: USPrivacyString.Flag, optOut: USPrivacyString.Flag, optedOut: Bool) throws {
        let decoded = try USPrivacyString(decoding: string)
        #expect(decoded.notice == notice)
        #expect(decoded.optOutOfSale == optOut)
        #expect(decoded.optedOut == optedOut)
    }

    @Test(
        "Malformed US privacy strings",
        arguments: [
            ("", "US privacy string is empty"),
            ("1YN", "US privacy string '1YN' has 3 characters; expected 4, like 1YNN"),
            ("1YNNN", "US privacy string '1YNNN' has 5 characters; expected 4, like 1YNN"),
            ("2YNN", "US privacy string '2YNN' has version '2'; only 1 is supported"),
            ("1YXN", "US privacy string '1YXN': character 3 must be Y, N or -"),
        ]
    )
    func malformed(string: String, message: String) {
        #expect {
            _ = try USPrivacyString(decoding: string)
        } throws: { error in
            (error as? ConsentStringError)?.message == message
        }
    }
}

@Suite struct USOptOutsTests {
    @Test(
        "GPP US sections from iabgpp-es's encoder",
        arguments: [
            // IABTechLab/iabgpp-es, modules/cmpapi/test/encoder/section/*.test.ts: the strings its
            // encoder is asserted to produce. Defaults (every field 0, not applicable):
            (7, "BAAAAAAAAABA.QA", false, false, false),  // UsNat.test "should encode default"
            (8, "BAAAAABA.QA", false, false, false),  // UsCa.test
            (9, "BAAAABA", false, false, false),  // UsVa.test
            (10, "BAAAAEA.Q", false, false, false),  // UsCo.test
            (11, "BAAAAAQ", false, false, false),  // UsUt.test
            (12, "BAAAAAEA.QA", false, false, false),  // UsCt.test
            // Every opt-out set to 1 (opted out), GPC true where the section has it:
            (7, "BVVVkkkkkpFY.YA", true, true, true),  // UsNat.test "should encode to BVVVkkkkkpFY.YA"
            (8, "BVWSSSVY.YA", true, true, true),  // UsCa.test "should encode to BVWSSSVY.YA"
            (9, "BVWSSVY", true, false, false),  // UsVa.test "should encode to BVWSSVY"
            (10, "BVWSSVg.Y", true, false, true),  // UsCo.test "should encode to BVWSSVg.Y"
            (11, "BVVkklW", true, false, false),  // UsUt.test "should encode to BVVkklW"
            (12, "BVWSSZFg.YA", true, false, true),  // UsCt.test "should encode to BVWSSZFg.YA"
            (7, "BVVVkkkkkpFY", true, true, false),  // without its GPC sub-section
            // UsNat.test "should decode BVQqAAAACg": the test's own expectations don't assert (chai
            // `expect(a, b)`); its bits say SaleOptOut = SharingOptOut = 2, did not opt out.
            (7, "BVQqAAAACg", false, false, false),
        ]
    )
    func decodes(section: Int, text: String, sale: Bool, sharing: Bool, gpc: Bool) throws {
        let optOuts = try #require(try USOptOuts.decode(sectionID: section, text))
        #expect(optOuts.saleOptOut == sale)
        #expect(optOuts.sharingOptOut == sharing)
        #expect(optOuts.globalPrivacyControl == gpc)
        #expect(optOuts.optedOut == (sale || sharing || gpc))
    }

    @Test("Sections other than 7 to 12 are not read")
    func otherSections() throws {
        #expect(try USOptOuts.decode(sectionID: 2, "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA") == nil)
        #expect(try USOptOuts.decode(sectionID: 13, "BAAAAAAAAABA") == nil)
    }

    @Test(
        "Malformed US sections",
        arguments: [
            (7, "z", "GPP section 7 (usnat): version 51 is not supported"),
            (7, "BAA", "GPP section 7 (usnat): SaleOptOut ends past the string"),
            (7, "", "GPP section 7 (usnat) is empty"),
            (8, "BA", "GPP section 8 (usca): SaleOptOut ends past the string"),
            (7, "DAAAAAAAAABA", "GPP section 7 (usnat): version 3 is not supported"),
            (9, "BAw", "GPP section 9 (usva): SaleOptOut is 3; expected 0, 1 or 2"),
            (8, "BAAAAABA.AA", "GPP section 8 (usca): GPC sub-section type 0; expected 1"),
            (8, "BAA!", "GPP section 8 (usca): the character at offset 3 is not base64url"),
        ] as [(Int, String, String)]
    )
    func malformed(section: Int, text: String, message: String) {
        #expect {
            _ = try USOptOuts.decode(sectionID: section, text)
        } throws: { error in
            (error as? ConsentStringError)?.message == message
        }
    }
}
