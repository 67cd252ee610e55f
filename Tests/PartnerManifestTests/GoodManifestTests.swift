import PartnerManifest
import PullSyncKernel
import PartnerAdapterKit
import Testing

@Suite struct GoodManifestTests {
    @Test func minimalManifestGetsEveryDefault() throws {
        let manifest = try ManifestFixtures.manifest(
            ManifestFixtures.base + "  auth:\n    bearer: { env: ACME_TOKEN }\n"
        )
        #expect(manifest.path == "m.yaml")
        #expect(manifest.id == "acme")
        #expect(manifest.name == "acme")
        #expect(manifest.sourceDomain == "acme.example")
        #expect(manifest.pullEnabled)
        #expect(manifest.policy.allowedHosts == AllowedHosts(["sync.acme.example"]))
        #expect(manifest.policy.ttl == .seconds(86_400))
        #expect(manifest.policy.timeout == .seconds(1))
        #expect(manifest.policy.rateLimit == RateLimitPolicy(calls: 10, window: .seconds(3600)))
        #expect(manifest.policy.budgetPerSecond == nil)
        #expect(manifest.policy.consent == PartnerConsentRequirements())
        #expect(manifest.http?.url == PartnerURL(scheme: "https", host: "sync.acme.example", path: "/v1/pull"))
        #expect(manifest.http?.query.map(\.name) == ["ec_id"])
        #expect(manifest.http?.query.map(\.value.source) == ["{ec_id}"])
        #expect(manifest.http?.headers.isEmpty == true)
        #expect(manifest.http?.auth == .bearer(.environment("ACME_TOKEN")))
        #expect(manifest.http?.uidPath == ["uid"])
        #expect(manifest.http?.notFoundStatuses == [404])
        #expect(manifest.secrets.map(\.reference) == [.environment("ACME_TOKEN")])
        #expect(manifest.secrets.first?.key == "pull.auth.bearer")
        #expect(manifest.secrets.first?.line == 7)
        #expect(manifest.secrets.first?.column == 20)
        #expect(manifest.idLocation == (1, 5) as (Int, Int))
        #expect(manifest.sourceDomainLocation == (2, 16) as (Int, Int))
    }

    @Test func everyKeyIsRead() throws {
        let manifest = try ManifestFixtures.manifest(
            """
            # yaml-language-server: $schema=../schemas/partner-manifest.schema.json
            id: bright_bid-2
            name: BrightBid DSP
            source_domain: BrightBid.Example.
            pull:
              enabled: false
              url: https://Match.BrightBid.example:8443/uid/look%20up?v=2&src=edge
              allowed_hosts:
                - match.brightbid.example.
                - backup.brightbid.example
              query:
                z_last_name_first: "{ec_hash}"
                pid: "{partner_id}"
                consent: "{gdpr_consent}"
                fixed: abc
              headers:
                X-Publisher: pub-123
                X-Api-Key: "Key {token}"
                Accept: application/json
              auth:
                header_token:
                  file: /run/secrets/brightbid
              response:
                uid_field: data.user.id
                not_found_statuses: [404, 410, 204]
              timeout: 750ms
              ttl: 12h
              rate_limit:
                calls: 4
                window: 30m
              budget_per_second: 2.5
            consent:
              tcf_vendor_id: 123
              gpp_skip_sections: [7, 8]

            """
        )
        #expect(manifest.id == "bright_bid-2")
        #expect(manifest.name == "BrightBid DSP")
        #expect(manifest.sourceDomain == "brightbid.example")
        #expect(!manifest.pullEnabled)
        #expect(manifest.policy.allowedHosts.hosts == ["match.brightbid.example", "backup.brightbid.example"])
        #expect(manifest.http?.url.scheme == "https")
        #expect(manifest.http?.url.host == "match.brightbid.example")
        #expect(manifest.http?.url.port == 8443)
        #expect(manifest.http?.url.path == "/uid/look%20up")
        #expect(manifest.http?.url.fixedQuery == "v=2&src=edge")
        #expect(manifest.http?.query.map(\.name) == ["z_last_name_first", "pid", "consent", "fixed"])
        #expect(manifest.http?.query.map(\.value.source) == ["{ec_hash}", "{partner_id}", "{gdpr_consent}", "abc"])
        #expect(manifest.http?.headers.map(\.name) == ["X-Publisher", "X-Api-Key", "Accept"])
        #expect(manifest.http?.headers.map(\.value.source) == ["pub-123", "Key {token}", "application/json"])
        #expect(manifest.http?.auth == .headerTemplate(.file("/run/secrets/brightbid")))
        #expect(manifest.secrets.first?.line == 22)
        #expect(manifest.secrets.first?.column == 13)
        #expect(manifest.http?.uidPath == ["data", "user", "id"])
        #expect(manifest.http?.notFoundStatuses == [404, 410, 204])
        #expect(manifest.policy.timeout == .milliseconds(750))
        #expect(manifest.policy.ttl == .seconds(43_200))
        #expect(manifest.policy.rateLimit == RateLimitPolicy(calls: 4, window: .seconds(1800)))
        #expect(manifest.policy.budgetPerSecond == 2.5)
        #expect(manifest.policy.consent == PartnerConsentRequirements(tcfVendorID: 123, gppSkipSections: [7, 8]))
    }

    @Test(arguments: [
        ("30", Duration.seconds(30)),
        ("1s", .seconds(1)),
        ("1500ms", .milliseconds(1500)),
        ("1.5s", .milliseconds(1500)),
        ("2.25m", .seconds(135)),
        ("5m", .seconds(300)),
        ("24h", .seconds(86_400)),
        ("0.5h", .seconds(1800)),
        ("1d", .seconds(86_400)),
        ("7d", .seconds(604_800)),
        ("\"36h\"", .seconds(129_600)),
        ("1.000000001s", .nanoseconds(1_000_000_001)),
    ])
    func durations(_ written: String, _ expected: Duration) throws {
        let manifest = try ManifestFixtures.manifest(ManifestFixtures.base + "  ttl: \(written)\n")
        #expect(manifest.policy.ttl == expected)
    }

    @Test func timeoutMayBeExactlyThirtySeconds() throws {
        let manifest = try ManifestFixtures.manifest(ManifestFixtures.base + "  timeout: 30s\n")
        #expect(manifest.policy.timeout == .seconds(30))
    }

    @Test(
        arguments: [
            ("http://127.0.0.1:8080/pull", "[127.0.0.1]", "127.0.0.1", 8080),
            ("http://localhost/pull", "[localhost]", "localhost", nil),
            ("http://[::1]:9000/pull", "[\"[::1]\"]", "::1", 9000),
            ("https://[::1]/pull", "[\"::1\"]", "::1", nil),
            ("http://partner.localhost/pull", "[partner.localhost]", "partner.localhost", nil),
        ] as [(String, String, String, Int?)]
    )
    func loopbackURLs(_ url: String, _ hosts: String, _ host: String, _ port: Int?) throws {
        let yaml = ManifestFixtures.withHosts(hosts).replacingOccurrences(
            of: "https://sync.acme.example/v1/pull",
            with: url
        )
        let manifest = try ManifestFixtures.manifest(yaml)
        #expect(manifest.http?.url.host == host)
        #expect(manifest.http?.url.port == port)
        #expect(manifest.policy.allowedHosts.contains(host))
    }

    @Test func hostsAreNormalized() throws {
        let yaml = ManifestFixtures.withHosts("[SYNC.Acme.Example.]")
            .replacingOccurrences(of: "https://sync.acme.example/v1/pull", with: "HTTPS://Sync.ACME.example./v1/pull")
            .replacingOccurrences(of: "source_domain: acme.example", with: "source_domain: ACME.Example.")
        let manifest = try ManifestFixtures.manifest(yaml)
        #expect(manifest.sourceDomain == "acme.example")
        #expect(manifest.policy.allowedHosts.hosts == ["sync.acme.example"])
        #expect(manifest.http?.url.scheme == "https")
        #expect(manifest.http?.url.host == "sync.acme.example")
        #expect(manifest.http?.url.description == "https://sync.acme.example/v1/pull")
    }

    @Test func emptyPathBecomesSlash() throws {
        let manifest = try ManifestFixtures.manifest(ManifestFixtures.withURL("https://sync.acme.example"))
        #expect(manifest.http?.url.path == "/")
    }

    @Test func tokenInAHeaderWithBearerAuthIsAllowed() throws {
        let manifest = try ManifestFixtures.manifest(
            ManifestFixtures.base
                + "  headers:\n    X-Sig: \"{token}\"\n  auth:\n    bearer: { file: /run/secrets/acme }\n"
        )
        #expect(manifest.http?.auth == .bearer(.file("/run/secrets/acme")))
        #expect(manifest.http?.headers.map(\.name) == ["X-Sig"])
    }

    @Test func authorizationHeaderFromTheToken() throws {
        let manifest = try ManifestFixtures.manifest(
            ManifestFixtures.base
                + "  headers:\n    Authorization: \"Token {token}\"\n  auth:\n    header_token: { env: ACME_TOKEN }\n"
        )
        #expect(manifest.http?.headers.map(\.value.source) == ["Token {token}"])
        #expect(manifest.http?.auth == .headerTemplate(.environment("ACME_TOKEN")))
    }

    @Test func emptyQueryMeansNoQueryItems() throws {
        let manifest = try ManifestFixtures.manifest(ManifestFixtures.base + "  query: {}\n")
        #expect(manifest.http?.query.isEmpty == true)
    }

    @Test func emptyNotFoundStatuses() throws {
        let manifest = try ManifestFixtures.manifest(
            ManifestFixtures.base + "  response:\n    not_found_statuses: []\n"
        )
        #expect(manifest.http?.notFoundStatuses.isEmpty == true)
    }

    /// `&`, `*`, `!` and `#` that are not YAML anchors, aliases, tags or comments.
    @Test func indicatorCharactersInsideValuesAreFine() throws {
        let manifest = try ManifestFixtures.manifest(
            """
            # Comments may say &anchor, *alias and !tag.
            id: acme
            name: Acme & *Partners* !really
            source_domain: acme.example
            pull:
              url: https://sync.acme.example/v1/pull?a=1&b=*   # a comment &x *y
              allowed_hosts: ['sync.acme.example']
              headers:
                X-Note: "&quoted *too* !yes # not a comment"
                X-Plain: a&b*c!d
                X-Single: '&it''s *fine*'
              response:
                uid_field: >-
                  *folded*
                  &text

            """
        )
        #expect(manifest.name == "Acme & *Partners* !really")
        #expect(manifest.http?.url.fixedQuery == "a=1&b=*")
        #expect(
            manifest.http?.headers.map(\.value.source) == [
                "&quoted *too* !yes # not a comment", "a&b*c!d", "&it's *fine*",
            ]
        )
        #expect(manifest.http?.uidPath == ["*folded* &text"])
    }

    @Test func explicitDocumentMarkersByteOrderMarkAndCRLF() throws {
        let text = "\u{FEFF}---\r\n" + ManifestFixtures.base.replacingOccurrences(of: "\n", with: "\r\n") + "...\r\n"
        let manifest = try ManifestFixtures.manifest(text)
        #expect(manifest.id == "acme")
        #expect(manifest.sourceDomainLocation == (3, 16) as (Int, Int))
    }

    @Test func flowStyleManifest() throws {
        let manifest = try ManifestFixtures.manifest(
            "{id: acme, source_domain: acme.example, pull: {url: 'https://sync.acme.example/', "
                + "allowed_hosts: [sync.acme.example], auth: {bearer: {env: ACME_TOKEN}}}}\n"
        )
        #expect(manifest.http?.auth == .bearer(.environment("ACME_TOKEN")))
        #expect(manifest.secrets.first?.line == 1)
        #expect(manifest.secrets.first?.column == 140)
    }

    @Test func makePartnerCarriesEverything() throws {
        let manifest = try ManifestFixtures.manifest(
            ManifestFixtures.base
                + "  ttl: 2h\n  timeout: 2s\n  budget_per_second: 5\n  auth:\n    bearer: { env: ACME_TOKEN }\n"
                + "name: Acme\nconsent:\n  tcf_vendor_id: 7\n"
        )
        let partner = try manifest.makePartner(secrets: [.environment("ACME_TOKEN"): Secret("t0k3n")])
        #expect(partner.id == "acme")
        #expect(partner.name == "Acme")
        #expect(partner.sourceDomain == "acme.example")
        #expect(partner.pullEnabled)
        #expect(partner.disabledReason == nil)
        #expect(partner.policy.allowedHosts == manifest.policy.allowedHosts)
        #expect(partner.policy.ttl == .seconds(7200))
        #expect(partner.policy.timeout == .seconds(2))
        #expect(partner.policy.budgetPerSecond == 5)
        #expect(partner.policy.consent.tcfVendorID == 7)
        let adapter = try #require(partner.adapter as? HTTPPullAdapter)
        #expect(adapter.configuration == manifest.http)

        let disabled = try manifest.makePartner(disabledReason: "secret env:ACME_TOKEN is not set")
        #expect(disabled.disabledReason == "secret env:ACME_TOKEN is not set")
    }

    @Test func optOutEndpointIsReadAndBuiltWithItsSecret() throws {
        let manifest = try ManifestFixtures.manifest(
            ManifestFixtures.base + """
                optout:
                  url: https://sync.acme.example/optout?v=2
                  method: DELETE
                  query: { user: "{ec_hash}" }
                  headers: { X-Key: "{token}" }
                  auth: { header_token: { env: ACME_OPTOUT } }

                """
        )
        let optOut = try #require(manifest.optOut)
        #expect(optOut.method == "DELETE")
        #expect(optOut.url.host == "sync.acme.example")
        #expect(optOut.query.map(\.name) == ["user"])
        #expect(manifest.secrets.map(\.key) == ["optout.auth.header_token"])
        #expect(manifest.secrets.first?.line == 11)
        let partner = try manifest.makePartner(secrets: [.environment("ACME_OPTOUT"): Secret("s3cret")])
        let adapter = try #require(partner.optOut)
        let request = try adapter.makeRequest(
            for: PullContext(
                edgeCookie: EdgeCookie(unchecked: String(repeating: "a", count: 64) + ".AbC123"),
                partnerID: "acme",
                sourceDomain: "acme.example",
                now: Timestamp(secondsSinceEpoch: 0)
            )
        )
        #expect(request.method == "DELETE")
        #expect(request.query.map(\.name) == ["user"])
        #expect(request.headers.map(\.value) == ["s3cret"])
        #expect(request.headers.map(\.isSecret) == [true])
        // Without `optout`, none.
        let plain = try ManifestFixtures.manifest(ManifestFixtures.base)
        #expect(plain.optOut == nil)
        let plainPartner = try plain.makePartner()
        #expect(plainPartner.optOut == nil)
    }

    @Test func eidMappingDefaultsToTheSourceDomainAndAgentType3() throws {
        let manifest = try ManifestFixtures.manifest(ManifestFixtures.base)
        #expect(manifest.eid == EIDMapping(source: "acme.example", agentType: 3, matchMethod: nil))
        #expect(try manifest.makePartner().eid == manifest.eid)
    }

    @Test(arguments: [
        ("eid: { source: ID5-Sync.com., atype: 1, mm: 3 }\n", EIDMapping(source: "id5-sync.com", agentType: 1, matchMethod: 3)),
        ("eid:\n  mm: 0\n", EIDMapping(source: "acme.example", agentType: 3, matchMethod: 0)),
        ("eid: { atype: 2 }\n", EIDMapping(source: "acme.example", agentType: 2, matchMethod: nil)),
        ("eid: {}\n", EIDMapping(source: "acme.example", agentType: 3, matchMethod: nil)),
    ])
    func eidMappingIsRead(yaml: String, expected: EIDMapping) throws {
        let manifest = try ManifestFixtures.manifest(ManifestFixtures.base + yaml)
        #expect(manifest.eid == expected)
        #expect(manifest.eid.source == expected.source)
        // The running partner carries it (what the EIDs are built from).
        #expect(try manifest.makePartner().eid == expected)
    }
}
