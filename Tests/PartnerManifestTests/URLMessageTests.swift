import Foundation
import PartnerManifest
import Testing

@testable import PartnerManifest
import PartnerAdapterKit

/// Every refusal of `pull.url`'s parser, at the value, with its exact message; and the quoting
/// that messages use for manifest text.
@Suite struct URLMessageTests {
    @Test(arguments: [
        ("https://sync.acme.example/a%2", "contains '%' not followed by two hex digits which must be percent-encoded"),
        ("https://sync.acme.example/a%zz", "contains '%' not followed by two hex digits which must be percent-encoded"),
        ("\"https://sync.acme.example/caf\u{E9}\"", "contains a non-ASCII character which must be percent-encoded"),
        ("https://sync.acme.example/a^b", "contains '^' which must be percent-encoded"),
        ("https://sync.acme.example/a?b=[1]", "contains '[' which must be percent-encoded"),
        ("https://[::1/p", "has an unclosed '[' in its host"),
        ("https://[::1]x/p", "has text after its host's ']'"),
        ("https://:443/p", "has no host"),
        ("https://sync.acme.example:/p", "has an invalid port; use a number from 1 to 65535"),
        ("https://sync.acme.example:0443x/p", "has an invalid port; use a number from 1 to 65535"),
        ("https://sync_acme.example/p", "host 'sync_acme.example' must be a DNS name or a loopback address"),
        ("1https://sync.acme.example/p", "must be an absolute URL like https://sync.partner.example/pull"),
        ("https:/sync.acme.example/p", "must be an absolute URL like https://sync.partner.example/pull"),
    ])
    func refused(url: String, message: String) {
        let diagnostics = ManifestFixtures.diagnostics(ManifestFixtures.withURL(url)).map(\.description)
        #expect(diagnostics == ["m.yaml:4:8: error: 'pull.url' \(message)"])
    }

    @Test func percentEncodingAndCaseAreAccepted() throws {
        let manifest = try ManifestFixtures.manifest(
            ManifestFixtures.withURL("HTTPS://SYNC.Acme.Example.:8443/a%41%2f?x=1&y=%7E")
        )
        let url = try #require(manifest.http?.url)
        #expect(url.scheme == "https")
        #expect(url.host == "sync.acme.example")
        #expect(url.port == 8443)
        #expect(url.path == "/a%41%2f")
        #expect(url.fixedQuery == "x=1&y=%7E")
    }

    @Test func anIPv6LoopbackHost() throws {
        let yaml = ManifestFixtures.withURL("http://[::1]:9000/p").replacingOccurrences(
            of: "[sync.acme.example]",
            with: "[\"[::1]\"]"
        )
        let url = try #require(try ManifestFixtures.manifest(yaml).http?.url)
        #expect(url.host == "::1")
        #expect(url.port == 9000)
    }

    @Test func quotingCutsAndEscapes() {
        let sixty = String(repeating: "a", count: 60)
        #expect(Quote.text(sixty) == "'\(sixty)'")
        #expect(Quote.text(sixty + "b") == "'\(sixty)…'")
        #expect(Quote.text("a\tb\nc\u{7F}\u{85}é") == "'a\\tb\\nc\\u{7F}\\u{0085}é'")
        #expect(Quote.line("a\tb") == "a\tb")
        #expect(Quote.line("a\nb\u{2028}c\u{85}") == "a\\nb\\u{2028}c\\u{0085}")
    }
}
