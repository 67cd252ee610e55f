import PartnerManifest
import Testing

@Suite struct MultipleProblemsTests {
    @Test func everyProblemInAFileIsReportedInSourceOrder() {
        let yaml = """
            id: Acme
            source_domain: acme_example
            pull:
              url: ftp://sync.acme.example/
              allowed_hosts: []
              tiemout: 1s
              ttl: forever
              timeout: 1s
              timeout: 2s
              headers:
                Host: x
              auth:
                bearer: sk_live_4f9a8b7c6d
            consent:
              tcf_vendor_id: 0
              gpp_skip_sections: [300]
            extra: true

            """
        let diagnostics = ManifestFixtures.diagnostics(yaml)
        #expect(
            diagnostics.map { "\($0.line):\($0.column)" } == [
                "1:5", "2:16", "4:8", "5:18", "6:3", "7:8", "9:3", "11:5", "13:13", "15:18", "16:23", "17:1",
            ]
        )
        #expect(
            diagnostics.map(\.message) == [
                "'id' must be 1 to 32 characters of a-z, 0-9, '_' and '-'; found 'Acme'",
                "'source_domain' must be a DNS name like acme.example; found 'acme_example'",
                "'pull.url' must use https; found 'ftp'",
                "'pull.allowed_hosts' must list at least one host",
                "unknown key 'pull.tiemout'; valid keys: enabled, url, allowed_hosts, adapter, params, query, headers, auth, response, "
                    + "timeout, ttl, rate_limit, budget_per_second; did you mean 'timeout'?",
                "invalid duration 'forever' for 'pull.ttl'; write a number with a unit: 500ms, 2s, 5m, 24h, 1d",
                "duplicate key 'pull.timeout'; first defined at line 8, column 3",
                "'pull.headers.Host' cannot be set in a manifest; "
                    + "Host, Content-Length, Transfer-Encoding and Connection are set by the HTTP client",
                "'pull.auth.bearer' must be a secret reference like { env: NAME } or { file: PATH }, never a literal token",
                "'consent.tcf_vendor_id' must be an integer from 1 to 65535 (the IAB TCF vendor ID); found '0'",
                "'consent.gpp_skip_sections[0]' must be an integer from 1 to 255 (a GPP section ID); found '300'",
                "unknown key 'extra'; valid keys: id, name, source_domain, pull, consent, eid, optout",
            ]
        )
    }

    @Test func missingKeysAreAllReported() {
        let diagnostics = ManifestFixtures.diagnostics("name: Acme\npull:\n  enabled: true\n")
        #expect(
            diagnostics.map(\.description) == [
                "m.yaml:1:1: error: missing required key 'id'",
                "m.yaml:1:1: error: missing required key 'source_domain'",
                "m.yaml:3:3: error: missing required key 'pull.allowed_hosts'",
                "m.yaml:3:3: error: missing required key 'pull.url'",
            ]
        )
    }

    @Test func anchorsAndTagsAreAllReported() {
        let diagnostics = ManifestFixtures.diagnostics("id: &a acme\nname: &b x\nsource_domain: !t x\n")
        #expect(diagnostics.map(\.line) == [1, 2])
        let tags = ManifestFixtures.diagnostics(ManifestFixtures.base + "name: !!str a\nconsent: !!map {}\n")
        #expect(tags.map { "\($0.line):\($0.column)" } == ["6:7", "7:10"])
    }
}
