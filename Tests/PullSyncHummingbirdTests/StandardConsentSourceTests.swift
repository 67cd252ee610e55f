import HTTPTypes
import Hummingbird
import NIOCore
import PullSync
import PullSyncHummingbird
import Testing

/// Which cookies and headers the reference service reads, and how.
@Suite struct StandardConsentSourceTests {
    static let tcf = "COvFyGBOvFyGBAbAAAENAPCAAOAAAAAAAAAAAEEUACCKAAA"
    static let gpp = "DBACNYA~COvFyGBOvFyGBAbAAAENAPCAAOAAAAAAAAAAAEEUACCKAAA~1YNN"

    func read(_ fields: [(String, String)]) -> (decision: ConsentDecision, strings: ConsentStrings) {
        var headers = HTTPFields()
        for (name, value) in fields { headers.append(HTTPField(name: HTTPField.Name(name)!, value: value)) }
        let request = Request(
            head: HTTPRequest(method: .get, scheme: "http", authority: "edge.test", path: "/", headerFields: headers),
            body: RequestBody(buffer: ByteBuffer())
        )
        return StandardConsentSource().consent(for: request, cookies: RequestCookies(request))
    }

    @Test(
        "Cookies and headers",
        arguments: [
            ([(String, String)](), true, ConsentStrings()),
            ([("Cookie", "ts-consent=0")], false, ConsentStrings()),
            ([("Cookie", "ts-consent=1")], true, ConsentStrings()),
            ([("Sec-GPC", "1")], true, ConsentStrings(globalPrivacyControl: true)),
            ([("Sec-GPC", " 1 ")], true, ConsentStrings(globalPrivacyControl: true)),
            ([("Sec-GPC", "0")], true, ConsentStrings()),
            (
                [("Cookie", "euconsent-v2=\(tcf); __gpp=\(gpp); __gpp_sid=2,6; us_privacy=1YNN")], true,
                ConsentStrings(tcf: tcf, gpp: gpp, gppSectionIDs: [2, 6], usPrivacy: "1YNN")
            ),
            // The older names still read; the standard ones win when both are present.
            (
                [("Cookie", "gpp=\(gpp); gpp_sid=2_6; usprivacy=1YYN")], true,
                ConsentStrings(gpp: gpp, gppSectionIDs: [2, 6], usPrivacy: "1YYN")
            ),
            ([("Cookie", "usprivacy=1YYN; us_privacy=1YNN")], true, ConsentStrings(usPrivacy: "1YNN")),
            ([("Cookie", "__gpp_sid=2%2C7")], true, ConsentStrings(gppSectionIDs: [2, 7])),
            // A section list that isn't one is ignored (the GPP string's own sections then apply).
            ([("Cookie", "__gpp_sid=2,x")], true, ConsentStrings()),
            ([("Cookie", "__gpp_sid=2,300")], true, ConsentStrings()),
            // Oversized values are dropped, not cut.
            ([("Cookie", "euconsent-v2=" + String(repeating: "A", count: 4097))], true, ConsentStrings()),
        ] as [([(String, String)], Bool, ConsentStrings)]
    )
    func reads(fields: [(String, String)], granted: Bool, strings: ConsentStrings) {
        let (decision, read) = read(fields)
        #expect(decision.granted == granted)
        #expect(read == strings)
    }
}
