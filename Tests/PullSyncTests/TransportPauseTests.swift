import PullSync
import PullSyncTesting
import Testing

extension AllTransportTests {
    /// Issue 8: a partner answering `429`/`503` with `Retry-After` over real HTTPS is paused for
    /// every EC; the header reaches the kernel through the real transport.
    @Suite("Transport: Retry-After pauses")
    struct TransportPauseTests {
        @Test("429 with Retry-After over HTTPS pauses the partner; the other partner is still called")
        func pauseOverHTTPS() async throws {
            try await withPartnerServer { server in
                server.script(path: "/a", .respond(status: 429, headers: [("Retry-After", "120")], body: []))
                server.script(path: "/b", .uid("b-1"))
                let a = makePartner("a", path: "/a", port: server.port, token: makeToken())
                let b = makePartner("b", path: "/b", port: server.port, token: makeToken())
                try await withHarness(try TransportHarness(partners: [a, b])) { harness in
                    let first = await harness.process(1)
                    #expect(first.results.first { $0.partnerID == "a" }?.status == 429)

                    for n in 2...6 {
                        let report = await harness.process(n)
                        #expect(report.plan.decision(for: "a") == .skip(.partnerPaused))
                        #expect(report.plan.decision(for: "b") == .dispatch)
                    }
                    #expect(server.requestCount(path: "/a") == 1)
                    #expect(server.requestCount(path: "/b") == 6)

                    // The pause ends on the clock, and the partner is asked again.
                    harness.clock.advance(by: .seconds(120))
                    server.script(path: "/a", .uid("a-7"))
                    let later = await harness.process(7)
                    #expect(later.plan.decision(for: "a") == .dispatch)
                    #expect(later.results.first { $0.partnerID == "a" }?.outcome == .uid("a-7"))
                    #expect(server.requestCount(path: "/a") == 2)
                }
            }
        }

        @Test("503 with an HTTP-date Retry-After over HTTPS pauses until that date")
        func httpDateOverHTTPS() async throws {
            try await withPartnerServer { server in
                // The test clock starts at 2026-01-01T00:00:00Z.
                server.script(
                    path: "/pull",
                    .respond(status: 503, headers: [("Retry-After", "Thu, 01 Jan 2026 00:00:45 GMT")], body: [])
                )
                let partner = makePartner("acme", port: server.port, token: makeToken())
                try await withHarness(try TransportHarness(partners: [partner])) { harness in
                    _ = await harness.process(1)
                    harness.clock.advance(by: .seconds(44))
                    #expect(await harness.process(2).plan.decision(for: "acme") == .skip(.partnerPaused))
                    harness.clock.advance(by: .seconds(1))
                    #expect(await harness.process(3).plan.decision(for: "acme") == .dispatch)
                    #expect(server.requestCount(path: "/pull") == 2)
                }
            }
        }
    }
}
