import PullSyncKernel
import PartnerAdapterKit
import PullSyncTesting
import Testing

/// Spec "Behaviour" 6: query parameters and headers come from templates over a closed set of
/// variables; values are percent-encoded in the URL; the client IP is sent only on opt-in.
@Suite("Templates")
struct TemplateTests {
    struct ParseFailure: Sendable, CustomTestStringConvertible {
        var source: String
        var offset: Int
        var message: String
        var testDescription: String { source }
    }

    static let unclosed = "unclosed '{' in template; write {variable}"
    static let stray = "unexpected '}' in template; write {variable}"
    static func unknown(_ name: String) -> String {
        "unknown template variable '{\(name)}'; valid: ec_id, ec_hash, partner_id, source_domain, timestamp, token, "
            + "client_ip, gdpr_consent, gpp, gpp_sid, us_privacy"
    }

    @Test(
        "Malformed templates are refused with the offset and what would be valid",
        arguments: [
            ParseFailure(source: "{unknown}", offset: 0, message: unknown("unknown")),
            ParseFailure(source: "id={EC_ID}", offset: 3, message: unknown("EC_ID")),
            ParseFailure(source: "{}", offset: 0, message: unknown("")),
            ParseFailure(source: "{{ec_id}}", offset: 0, message: unknown("{ec_id")),
            ParseFailure(source: "{ec id}", offset: 0, message: unknown("ec id")),
            ParseFailure(source: "id={ec_id", offset: 3, message: unclosed),
            ParseFailure(source: "{", offset: 0, message: unclosed),
            ParseFailure(source: "a}b", offset: 1, message: stray),
            ParseFailure(source: "{ec_id}}", offset: 7, message: stray),
            ParseFailure(source: "é{x}", offset: 2, message: unknown("x")),
        ]
    )
    func parseFailure(_ failure: ParseFailure) {
        let error = #expect(throws: Template.ParseError.self) { try Template(parsing: failure.source) }
        #expect(error?.offset == failure.offset)
        #expect(error?.message == failure.message)
        #expect(error?.description == failure.message)
    }

    @Test("Valid templates parse into literal and variable segments")
    func segments() throws {
        let parsed = try Template(parsing: "id={ec_id}&h={ec_hash}{partner_id}")
        #expect(
            parsed.segments == [
                .literal("id="), .variable(.ecID), .literal("&h="), .variable(.ecHash), .variable(.partnerID),
            ]
        )
        #expect(parsed.variables == [.ecID, .ecHash, .partnerID])
        #expect(parsed.description == "id={ec_id}&h={ec_hash}{partner_id}")
        #expect(try Template(parsing: "").segments.isEmpty)
        #expect(try Template(parsing: "plain é").segments == [.literal("plain é")])
        #expect(try Template(parsing: "x").render { _ in "unused" } == "x")
    }

    static let context = PullContext(
        edgeCookie: EdgeCookie(unchecked: ec(1)),
        partnerID: "acme",
        sourceDomain: "acme.example",
        now: Timestamp(secondsSinceEpoch: 1_767_225_600) + .milliseconds(900),
        clientIP: "203.0.113.7",
        consentStrings: ConsentStrings(
            tcf: "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA",
            gpp: "DBABMA~CPXxRfAPXxRfAAfKABENB",
            gppSectionIDs: [2, 7],
            usPrivacy: "1YNN"
        )
    )

    static let expected: [TemplateVariable: String] = [
        .ecID: ec(1),
        .ecHash: hash(1),
        .partnerID: "acme",
        .sourceDomain: "acme.example",
        .timestamp: "1767225600",
        .token: "tok-123",
        .clientIP: "203.0.113.7",
        .gdprConsent: "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA",
        .gpp: "DBABMA~CPXxRfAPXxRfAAfKABENB",
        .gppSID: "2,7",
        .usPrivacy: "1YNN",
    ]

    @Test("Each variable renders its value in headers and query", arguments: TemplateVariable.allCases)
    func rendersVariable(_ variable: TemplateVariable) throws {
        let source = "<{\(variable.rawValue)}>"
        let query = variable == .token ? [] : [item("v", source)]
        let partner = httpPartner("acme", query: query, headers: [item("X-V", source)], token: Secret("tok-123"))

        let built = try partner.adapter.makeRequest(for: Self.context)

        let value = try #require(Self.expected[variable])
        #expect(
            built.headers.first == PullRequest.Header(name: "X-V", value: "<\(value)>", isSecret: variable == .token)
        )
        if variable != .token {
            #expect(built.query.map(\.name) == ["v"])
            #expect(built.query.map(\.value) == ["<\(value)>"])
        }
    }

    @Test("Absent consent strings and client IP render empty")
    func absentValuesRenderEmpty() throws {
        let partner = httpPartner(
            "acme",
            query: [
                item("ip", "{client_ip}"), item("gdpr", "{gdpr_consent}"), item("gpp", "{gpp}"),
                item("sid", "{gpp_sid}"), item("usp", "{us_privacy}"),
            ],
            token: Secret("t")
        )
        let bare = PullContext(
            edgeCookie: EdgeCookie(unchecked: ec(1)),
            partnerID: "acme",
            sourceDomain: "acme.example",
            now: Self.context.now
        )

        let built = try partner.adapter.makeRequest(for: bare)

        #expect(built.query.map(\.value) == ["", "", "", "", ""])
    }

    @Test("The default request is GET {url}?ec_id={ec_id} with a bearer token")
    func defaultShape() throws {
        let partner = TestPartners.partner("acme", token: Secret("tok"))

        let built = try partner.adapter.makeRequest(for: Self.context)

        #expect(built.method == "GET")
        #expect(built.renderedURL == "https://acme.partner.example/pull?ec_id=\(ec(1))")
        #expect(built.headers == [PullRequest.Header(name: "Authorization", value: "Bearer tok", isSecret: true)])
        #expect(built.body == nil)
    }

    @Test(
        "PartnerURL.rendered percent-encodes query names and values",
        arguments: [
            ("plain", "abc-123._~", "https://p.example/pull?plain=abc-123._~"),
            ("q", "a b&c=d/e?f#g", "https://p.example/pull?q=a%20b%26c%3Dd%2Fe%3Ff%23g"),
            ("q", "é+%", "https://p.example/pull?q=%C3%A9%2B%25"),
            ("na me", "x", "https://p.example/pull?na%20me=x"),
            ("empty", "", "https://p.example/pull?empty="),
        ]
    )
    func percentEncoding(name: String, value: String, expected: String) {
        let url = PartnerURL(scheme: "https", host: "p.example", path: "/pull")
        #expect(url.rendered(query: [(name: name, value: value)]) == expected)
    }

    @Test("Fixed query items come first, then rendered ones in order")
    func fixedQuery() {
        let url = PartnerURL(
            scheme: "https",
            host: "P.Example.",
            port: 8443,
            path: "/v1/pull",
            fixedQuery: "v=2&src=edge"
        )
        #expect(url.host == "p.example")
        #expect(url.rendered(query: []) == "https://p.example:8443/v1/pull?v=2&src=edge")
        #expect(url.rendered(query: [("a", "1"), ("b", "2")]) == "https://p.example:8443/v1/pull?v=2&src=edge&a=1&b=2")
        #expect(
            PartnerURL(scheme: "https", host: "p.example", path: "").rendered(query: [("a", "1")])
                == "https://p.example/?a=1"
        )
    }

    @Test("client_ip is empty unless the deployment opts in with forwardClientIP", arguments: [false, true])
    func clientIPOptIn(forward: Bool) async throws {
        let partner = httpPartner(
            "acme",
            query: [item("ec", "{ec_id}"), item("ip", "{client_ip}")],
            token: Secret("t")
        )
        let harness = try Harness(partners: [partner], configuration: PullSyncConfiguration(forwardClientIP: forward))
        try await harness.seed(1)

        _ = await harness.kernel.process(request(1, clientIP: "203.0.113.7"))

        let sent = try #require(harness.transport.requests.first)
        let ip = forward ? "203.0.113.7" : ""
        #expect(sent.query.map(\.value) == [ec(1), ip])
        #expect(sent.renderedURL == "https://acme.partner.example/pull?ec=\(ec(1))&ip=\(ip)")
        #expect(PullSyncConfiguration().forwardClientIP == false)
    }

    @Test("Consent strings of the request are passed to templates")
    func consentStringsThroughKernel() async throws {
        var partner = httpPartner(
            "acme",
            query: [item("gdpr", "{gdpr_consent}"), item("sid", "{gpp_sid}")],
            token: Secret("t")
        )
        // The TC string (the TCF v2 specification's URL example) consents to vendor 2 and purpose 1.
        partner.policy.consent = PartnerConsentRequirements(tcfVendorID: 2)
        let harness = try Harness(partners: [partner])
        try await harness.seed(1)

        let tcf = "COvFyGBOvFyGBAbAAAENAPCAAOAAAAAAAAAAAEEUACCKAAA"
        _ = await harness.kernel.process(request(1, consentStrings: ConsentStrings(tcf: tcf, gppSectionIDs: [8])))

        #expect(harness.transport.requests.first?.query.map(\.value) == [tcf, "8"])
    }
}
