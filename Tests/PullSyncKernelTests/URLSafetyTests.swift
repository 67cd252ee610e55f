import PullSyncTesting
import Testing

@testable import PullSyncKernel
import PartnerAdapterKit

/// Spec "Behaviour" 5: `https` only, host on the allow-list (case-insensitive, trailing dot
/// ignored), checked before every send; `http` only to loopback behind the development switch.
@Suite("URL safety")
struct URLSafetyTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var url: PartnerURL
        var allowed: [String]
        var allowLoopback = false
        var expected: Decision
        var testDescription: String { name }
    }

    @Test(
        "The built URL decides between dispatch and bad_url",
        arguments: [
            Case(
                name: "https to an allowed host",
                url: PartnerURL(scheme: "https", host: "sync.partner.example"),
                allowed: ["sync.partner.example"],
                expected: .dispatch
            ),
            Case(
                name: "allow-list compared case-insensitively, trailing dot ignored",
                url: PartnerURL(scheme: "HTTPS", host: "Sync.Partner.Example."),
                allowed: ["SYNC.partner.example."],
                expected: .dispatch
            ),
            Case(
                name: "host not on the allow-list",
                url: PartnerURL(scheme: "https", host: "evil.example"),
                allowed: ["sync.partner.example"],
                expected: .skip(.badURL)
            ),
            Case(
                name: "a subdomain of an allowed host is not allowed",
                url: PartnerURL(scheme: "https", host: "x.sync.partner.example"),
                allowed: ["sync.partner.example"],
                expected: .skip(.badURL)
            ),
            Case(
                name: "http to a non-loopback host",
                url: PartnerURL(scheme: "http", host: "sync.partner.example"),
                allowed: ["sync.partner.example"],
                expected: .skip(.badURL)
            ),
            Case(
                name: "http to a non-loopback host even with the development switch",
                url: PartnerURL(scheme: "http", host: "sync.partner.example"),
                allowed: ["sync.partner.example"],
                allowLoopback: true,
                expected: .skip(.badURL)
            ),
            Case(
                name: "loopback IPv4 without the development switch",
                url: PartnerURL(scheme: "https", host: "127.0.0.1", port: 8443),
                allowed: ["127.0.0.1"],
                expected: .skip(.badURL)
            ),
            Case(
                name: "localhost over http without the development switch",
                url: PartnerURL(scheme: "http", host: "localhost", port: 8080),
                allowed: ["localhost"],
                expected: .skip(.badURL)
            ),
            Case(
                name: "loopback over http with the development switch",
                url: PartnerURL(scheme: "http", host: "127.0.0.1", port: 8080),
                allowed: ["127.0.0.1"],
                allowLoopback: true,
                expected: .dispatch
            ),
            Case(
                name: "IPv6 loopback over https with the development switch",
                url: PartnerURL(scheme: "https", host: "::1", port: 8443),
                allowed: ["::1"],
                allowLoopback: true,
                expected: .dispatch
            ),
            Case(
                name: "loopback with the switch but not on the allow-list",
                url: PartnerURL(scheme: "http", host: "localhost"),
                allowed: ["127.0.0.1"],
                allowLoopback: true,
                expected: .skip(.badURL)
            ),
            Case(
                name: "a scheme other than http(s)",
                url: PartnerURL(scheme: "ftp", host: "sync.partner.example"),
                allowed: ["sync.partner.example"],
                expected: .skip(.badURL)
            ),
        ]
    )
    func urlDecision(_ scenario: Case) async throws {
        let partner = httpPartner("a", url: scenario.url, allowedHosts: scenario.allowed, token: Secret("t"))
        let harness = try Harness(
            partners: [partner],
            configuration: PullSyncConfiguration(allowLoopback: scenario.allowLoopback)
        )
        try await harness.seed(1)

        let report = await harness.kernel.process(request(1))

        #expect(report.plan.decision(for: "a") == scenario.expected)
        #expect(harness.kernel.isAllowed(scenario.url, for: partner) == (scenario.expected == .dispatch))
        if scenario.expected == .dispatch {
            let sent = try #require(harness.transport.requests.first)
            #expect(sent.renderedURL == scenario.url.rendered(query: [("ec_id", ec(1))]))
        } else {
            #expect(harness.transport.records.isEmpty)
            #expect(harness.decisions("a", "bad_url") == 1)
        }
    }

    @Test("Loopback URLs render with the port and a bracketed IPv6 host")
    func loopbackRendering() {
        #expect(
            PartnerURL(scheme: "http", host: "127.0.0.1", port: 8080, path: "/pull").rendered(query: [("ec_id", "x")])
                == "http://127.0.0.1:8080/pull?ec_id=x"
        )
        #expect(PartnerURL(scheme: "https", host: "::1", port: 8443).description == "https://[::1]:8443/")
    }

    @Test("A refused URL gives back its budget token")
    func badURLRefundsBudget() async throws {
        var partner = httpPartner("a", url: PartnerURL(scheme: "http", host: "a.partner.example"), token: Secret("t"))
        partner.policy.budgetPerSecond = 1
        let harness = try Harness(partners: [partner])

        for n in 1...3 {
            #expect(await harness.kernel.process(request(n, issued: true)).plan.decision(for: "a") == .skip(.badURL))
        }
    }

    @Test("The URL is checked again right before sending: a disallowed target is refused, not sent")
    func checkedBeforeSend() async throws {
        let harness = try Harness(partners: partners(["a"]))
        let edgeCookie = EdgeCookie(unchecked: ec(1))
        let context = PullContext(
            edgeCookie: edgeCookie,
            partnerID: "a",
            sourceDomain: "a.example",
            now: harness.clock.now()
        )
        let planned = PlannedCall(
            partner: try #require(harness.kernel.partner("a")),
            request: PullRequest(url: PartnerURL(scheme: "https", host: "elsewhere.example")),
            context: context,
            expected: nil
        )

        let result = await harness.kernel.call(planned, ecHash: edgeCookie.hashString)

        #expect(result.outcome == .refusedTarget)
        #expect(result.write == nil)
        #expect(harness.transport.records.isEmpty)
    }

    @Test(
        "Loopback detection",
        arguments: [
            ("localhost", true), ("LOCALHOST.", true), ("api.localhost", true), ("127.0.0.1", true),
            ("127.255.0.9", true), ("::1", true), ("[::1]", true), ("128.0.0.1", false), ("127.0.0", false),
            ("127.0.0.256", false), ("localhost.example", false), ("example.com", false), ("127", false),
            ("127.", false), ("1127.0.0.1", false), ("127.0.0.1.example", false), ("sync.127.example", false),
        ]
    )
    func loopback(host: String, isLoopback: Bool) {
        #expect(HostName.isLoopback(host) == isLoopback)
    }

    @Test(
        "Host names compare lowercased, without a trailing dot or IPv6 brackets",
        arguments: [
            ("sync.example", "sync.example"), ("Sync.Example.", "sync.example"), ("SYNC.EXAMPLE", "sync.example"),
            ("sync.example.", "sync.example"), ("[::1]", "::1"), ("[::1].", "[::1]"), ("", ""), (".", ""),
            ("a[b", "a[b"),
        ]
    )
    func normalize(host: String, normalized: String) {
        #expect(HostName.normalize(host) == normalized)
        #expect(HostName.normalize(host[...]) == normalized)
    }
}
