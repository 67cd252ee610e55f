import PullSyncKernel
import PullSyncTesting
import Testing

/// Spec "Behaviour" 2: an EC is `^[0-9a-f]{64}\.[A-Za-z0-9]{6}$` by default (pluggable); its
/// `ec_hash` is the part before the first `.`.
@Suite("Edge Cookie format")
struct EdgeCookieFormatTests {
    static let hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

    @Test(
        "Well-formed ECs parse, with the hash before the dot",
        arguments: [
            hex64 + ".AbC123",
            hex64 + ".000000",
            hex64 + ".zzzzzz",
            hex64 + ".ZZZZZZ",
            String(repeating: "f", count: 64) + ".a1B2c3",
        ]
    )
    func valid(raw: String) throws {
        let parsed = try #require(DefaultEdgeCookieFormat().parse(raw))
        #expect(parsed.value == raw)
        #expect(parsed.hashString == String(raw.prefix(64)))
        #expect(parsed.hash.count == 64)
        #expect(parsed.description == raw)
    }

    @Test(
        "Malformed ECs are refused",
        arguments: [
            "",
            String(hex64.uppercased()) + ".AbC123",  // uppercase hex
            "0123456789ABCDEF" + hex64.dropFirst(16) + ".AbC123",  // some uppercase hex
            String(hex64.dropLast()) + ".AbC123",  // 63 hex digits
            hex64 + "0.AbC123",  // 65 hex digits
            String(hex64.dropLast()) + "g.AbC123",  // non-hex digit
            hex64 + ".AbC12",  // 5-character suffix
            hex64 + ".AbC1234",  // 7-character suffix
            hex64 + ".",  // empty suffix
            hex64,  // no dot, no suffix
            hex64 + "XAbC123",  // no dot
            hex64 + ":AbC123",  // another separator
            hex64 + ".AbC-12",  // non-alphanumeric suffix
            hex64 + ".AbC_12",
            hex64 + ".AbC.12",
            hex64 + ".AbC 12",
            hex64 + ".AbC12é",  // non-ASCII suffix
            hex64 + ".AbC123\n",  // trailing newline
            " " + hex64 + ".AbC12",  // leading space
            ".AbC123",
        ]
    )
    func invalid(raw: String) {
        #expect(DefaultEdgeCookieFormat().parse(raw) == nil)
    }

    @Test(
        "Read in place, an EC in a header is well formed exactly when it parses, its hash as long",
        arguments: [
            hex64 + ".AbC123", String(hex64.uppercased()) + ".AbC123", hex64 + ".AbC12", hex64 + ".AbC12é",
            hex64 + ":AbC123", "", "ec-abcd1234", "ec-abcd", "ec-ab.cd.1234",
        ]
    )
    func hashLengthInPlace(raw: String) {
        // In a header, as the middleware reads it.
        let header = "theme=dark; ts-ec=\(raw); x=1"
        let start = header.utf8.index(header.utf8.startIndex, offsetBy: 18)
        let value = Substring(header.utf8[start..<header.utf8.index(start, offsetBy: raw.utf8.count)])
        for format in [DefaultEdgeCookieFormat() as any EdgeCookieFormat, PrefixedEdgeCookieFormat()] {
            #expect(format.hashLength(of: value) == format.parse(raw).map { $0.hash.utf8.count })
        }
    }

    @Test("A substring parses like the string")
    func substring() throws {
        let header = "ec=\(Self.hex64).AbC123; other=1"
        let start = header.index(header.startIndex, offsetBy: 3)
        let end = header.index(start, offsetBy: 71)
        #expect(DefaultEdgeCookieFormat().parse(header[start..<end])?.hashString == Self.hex64)
    }

    @Test("The hash is the part before the first dot")
    func hashBeforeFirstDot() {
        #expect(EdgeCookie(unchecked: "abc.def.ghi").hash == "abc")
        #expect(EdgeCookie(unchecked: "nodot").hash == "nodot")
        #expect(EdgeCookie(unchecked: ".x").hash == "")
        #expect(EdgeCookie(unchecked: "").hash == "")
        #expect(EdgeCookie(unchecked: "ab\u{e9}\u{301}.x.y").hash == "ab\u{e9}\u{301}")
    }

    @Test("The format is pluggable: the kernel uses the configured one for gating, keys and graph")
    func pluggableFormat() async throws {
        let harness = try Harness(
            partners: partners(["a"]),
            configuration: PullSyncConfiguration(edgeCookieFormat: PrefixedEdgeCookieFormat())
        )
        harness.transport.script(TestPartners.host("a"), .uid("u"))
        let custom = OrganicRequest(
            path: "/",
            edgeCookie: "ec-Abcdef123",
            ecIssuedOnThisRequest: true,
            consent: .granted
        )
        let standard = OrganicRequest(path: "/", edgeCookie: ec(1), ecIssuedOnThisRequest: true, consent: .granted)

        #expect(harness.kernel.gate(standard) == .skip(.invalidEC))
        let report = await harness.kernel.process(custom)

        #expect(report.plan.decision(for: "a") == .dispatch)
        #expect(harness.transport.requests.first?.query.map(\.value) == ["ec-Abcdef123"])
        #expect(try await harness.graph.record(ecHash: "ec-Abcdef123")?.partners["a.example"]?.uid == "u")
        #expect(
            try await harness.rateLimiter.count(
                key: RateLimitKey(partnerID: "a", ecHash: "ec-Abcdef123"),
                window: .seconds(3600),
                at: harness.clock.now()
            )
                == 1
        )
    }
}
