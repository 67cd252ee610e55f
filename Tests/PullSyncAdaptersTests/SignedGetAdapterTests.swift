import PartnerAdapterKit
import PullSync
import PullSyncAdapters
import PullSyncTesting
import Testing

@Suite struct SignedGetAdapterTests {
    static func adapter(url: PartnerURL, header: String = "X-Signature") throws -> SignedGetAdapter {
        let key = SecretReference.environment("KEY")
        return try SignedGetAdapter(
            configuration: CompiledAdapterConfiguration(
                url: url,
                parameters: AdapterParameters(
                    ["key_id": .text("k1"), "secret": .secret(key), "signature_header": .text(header)],
                    for: .signedGet
                ),
                secrets: [key: Secret("key")]
            )
        )
    }

    static let context = PullContext(
        edgeCookie: DefaultEdgeCookieFormat().parse(TestPartners.edgeCookie(1))!,
        partnerID: "p",
        sourceDomain: "p.example",
        now: Timestamp(secondsSinceEpoch: 1_700_000_000)
    )

    /// Signatures computed independently (Python's hmac) for the string
    /// `GET\n{path}\n{query}\n1700000000` keyed with `key`: the path and the URL's own query are
    /// signed as sent.
    @Test(arguments: [
        (
            PartnerURL(scheme: "https", host: "a.example", path: "/uid"),
            "ec_id=\(TestPartners.edgeCookie(1))",
            "126c98944381de6ea74012579d1cfca3f6c7d64734fea8ba723b624995bdf627"
        ),
        (
            PartnerURL(scheme: "https", host: "a.example", path: "/v%202/uid", fixedQuery: "a=1&b=%2F"),
            "a=1&b=%2F&ec_id=\(TestPartners.edgeCookie(1))",
            "d7f8dd05a3a548d222807aed069f5651699e67bc780bf5b59a9648d49a180c54"
        ),
    ])
    func theSignatureCoversPathQueryAndTime(url: PartnerURL, query: String, signature: String) throws {
        let request = try Self.adapter(url: url).makeRequest(for: Self.context)
        #expect(request.renderedURL == url.origin + url.path + "?" + query)
        #expect(request.headers.map(\.name) == ["X-Signature"])
        #expect(request.headers.first?.value == "t=1700000000,kid=k1,sig=\(signature)")
        // A signature is a credential while its timestamp is accepted: printouts redact it.
        #expect(request.headers.first?.isSecret == true)
        #expect(!request.description.contains(signature))
    }

    @Test func anUnresolvedKeyBuildsNoRequestAndNamesTheReference() throws {
        let adapter = try SignedGetAdapter(
            configuration: CompiledAdapterConfiguration(
                url: PartnerURL(scheme: "https", host: "a.example"),
                parameters: AdapterParameters(
                    ["key_id": .text("k1"), "secret": .secret(.file("/run/secrets/k"))],
                    for: .signedGet
                )
            )
        )
        #expect(throws: AdapterError("secret file:/run/secrets/k is not resolved")) {
            try adapter.makeRequest(for: Self.context)
        }
    }

    @Test func parametersForAnotherAdapterAreRefused() throws {
        let parameters = try AdapterParameters(["account_id": .text("a")], for: .jsonPost)
        #expect(throws: AdapterError.self) {
            try SignedGetAdapter(
                configuration: CompiledAdapterConfiguration(
                    url: PartnerURL(scheme: "https", host: "a.example"),
                    parameters: parameters
                )
            )
        }
    }
}
