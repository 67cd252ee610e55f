import Foundation
import PullSync
import PullSyncTesting
import Testing

extension AllTransportTests {
    /// Targets the transport must refuse before connecting: names that resolve to private, link-local,
    /// unspecified or (without the development switch) loopback addresses, and plain http to a real name.
    /// No test here connects anywhere but loopback: refused names resolve, through a static table, to
    /// addresses that are refused before any event loop is even asked for.
    @Suite("Transport: target safety")
    struct TransportTargetTests {
        @Test(
            "a name resolving to a non-public address is refused before connecting",
            arguments: [
                "10.0.0.5", "169.254.169.254", "0.0.0.0", "192.168.1.10", "172.16.0.1", "100.64.0.1",
                "::ffff:169.254.169.254", "fd00::5", "fe80::1", "::",
            ]
        )
        func privateAddressRefused(literal: String) async throws {
            let resolver = RecordingResolver([partnerHost: [ip(literal)]])
            let partner = makePartner("acme", port: 443, token: makeToken(), timeout: .seconds(60))
            try await withHarness(try TransportHarness(partners: [partner], resolver: resolver)) { harness in
                let (report, elapsed) = await timed { await harness.process() }
                let result = try harness.onlyResult(report)
                #expect(result.outcome == .refusedTarget)
                #expect(result.status == nil)
                #expect(try await harness.stored().isEmpty)
                // The name was resolved, and then nothing: no event loop was asked for, so no HTTP client did
                // anything and no connection was attempted.
                #expect(resolver.names == [partnerHost])
                #expect(harness.loops.loopsHandedOut == 0)
                #expect(elapsed < .seconds(30), "took \(elapsed)")
                // The refusal is logged with the addresses (the operator needs them).
                #expect(
                    harness.transportLogs.entries.contains {
                        $0.message.description.contains("refused") && renderedText(of: $0).contains(literal)
                    }
                )
            }
        }

        @Test("refused addresses in an answer are skipped: the first allowed one is pinned")
        func refusedAddressesSkipped() async throws {
            try await withPartnerServer { server in
                server.script(path: "/pull", .uid("mixed-uid"))
                let resolver = RecordingResolver([
                    partnerHost: [ip("10.0.0.5"), ip("169.254.169.254"), ip("0.0.0.0"), loopbackV4]
                ])
                let partner = makePartner("acme", port: server.port, token: makeToken())
                try await withHarness(try TransportHarness(partners: [partner], resolver: resolver)) { harness in
                    let result = try harness.onlyResult(await harness.process())
                    #expect(result.outcome == .uid("mixed-uid"))
                }
                #expect(server.requests.count == 1)
                #expect(server.acceptedConnections == 1)
            }
        }

        @Test("a name resolving only to refused addresses is refused, whatever their order")
        func everyAnswerRefused() async throws {
            let resolver = RecordingResolver([
                partnerHost: [ip("10.0.0.5"), ip("169.254.169.254"), ip("0.0.0.0"), ip("::1")]
            ])
            let partner = makePartner("acme", port: 443, token: makeToken())
            // Without the development switch, ::1 is refused like the rest.
            let harness = try TransportHarness(
                partners: [partner],
                resolver: resolver,
                allowLoopback: false,
                configuration: PullSyncConfiguration(allowLoopback: false)
            )
            try await withHarness(harness) { harness in
                let result = try harness.onlyResult(await harness.process())
                #expect(result.outcome == .refusedTarget)
                #expect(harness.loops.loopsHandedOut == 0)
            }
        }

        @Test("a name resolving to 127.0.0.1 is refused without allowLoopback, and served with it")
        func loopbackNeedsTheSwitch() async throws {
            try await withPartnerServer { server in
                server.script(path: "/pull", .uid("loop-uid"))
                let partner = makePartner("acme", port: server.port, token: makeToken())
                let refusing = try TransportHarness(
                    partners: [partner],
                    allowLoopback: false,
                    configuration: PullSyncConfiguration(allowLoopback: false)
                )
                try await withHarness(refusing) { harness in
                    let result = try harness.onlyResult(await harness.process())
                    #expect(result.outcome == .refusedTarget)
                    #expect(try await harness.stored().isEmpty)
                    #expect(harness.loops.loopsHandedOut == 0)
                }
                #expect(server.acceptedConnections == 0)
                #expect(server.requests.isEmpty)

                // The positive control: the same partner, with the switch, is reached (and an event loop used).
                try await withHarness(try TransportHarness(partners: [partner])) { harness in
                    let result = try harness.onlyResult(await harness.process())
                    #expect(result.outcome == .uid("loop-uid"))
                    #expect(harness.loops.loopsHandedOut > 0)
                }
                #expect(server.requests.count == 1)
            }
        }

        @Test("http:// to a non-loopback name is refused by the transport, before resolving")
        func plainHTTPToARealNameRefusedByTheTransport() async throws {
            let resolver = RecordingResolver([partnerHost: [loopbackV4]])
            let partner = makePartner("acme", scheme: "http", port: 80, token: makeToken())
            let harness = try TransportHarness(
                partners: [partner],
                resolver: resolver,
                allowLoopback: false,
                configuration: PullSyncConfiguration(allowLoopback: false)
            )
            try await withHarness(harness) { harness in
                let request = try partner.adapter.makeRequest(for: Self.context())
                let result = await harness.transport.send(request, limits: TransportLimits(timeout: .seconds(5)))
                guard case .failure(.refusedTarget) = result else {
                    Issue.record("expected refused_target, got \(result)")
                    return
                }
                #expect(resolver.names.isEmpty)
                #expect(harness.loops.loopsHandedOut == 0)
            }
        }

        @Test("http:// to a non-loopback name resolving to a private address is refused even with the switch")
        func plainHTTPWithTheSwitchStillChecksTheAddress() async throws {
            let resolver = RecordingResolver([partnerHost: [ip("10.0.0.5")]])
            let partner = makePartner("acme", scheme: "http", port: 80, token: makeToken())
            try await withHarness(try TransportHarness(partners: [partner], resolver: resolver)) { harness in
                let request = try partner.adapter.makeRequest(for: Self.context())
                let result = await harness.transport.send(request, limits: TransportLimits(timeout: .seconds(5)))
                guard case .failure(.refusedTarget) = result else {
                    Issue.record("expected refused_target, got \(result)")
                    return
                }
                #expect(harness.loops.loopsHandedOut == 0)
            }
        }

        @Test("http:// to a non-loopback name: probe says refused_target, an organic request skips it as bad_url")
        func plainHTTPToARealNameThroughTheKernel() async throws {
            try await withPartnerServer(tls: false) { server in
                server.script(path: "/pull", .uid("must-not-be-read"))
                // The name resolves to the loopback server, and the switch is on: only the kernel's URL rule
                // (http only to loopback *names*) stands between the request and the server.
                let partner = makePartner("acme", scheme: "http", port: server.port, token: makeToken())
                try await withHarness(try TransportHarness(partners: [partner])) { harness in
                    let probe = try #require(
                        try await harness.kernel.probe(
                            partnerID: "acme",
                            edgeCookie: EdgeCookie(unchecked: TestPartners.edgeCookie(1))
                        )
                    )
                    #expect(probe.outcome == .refusedTarget)
                    #expect(probe.status == nil)

                    let report = await harness.process()
                    #expect(report.plan.decision(for: "acme") == .skip(.badURL))
                    #expect(report.results.isEmpty)
                    #expect(try await harness.stored().isEmpty)
                    #expect(harness.loops.loopsHandedOut == 0)
                }
                #expect(server.acceptedConnections == 0)
            }
        }

        @Test("a host not in the allow-list is skipped as bad_url and never called")
        func hostNotAllowListed() async throws {
            try await withPartnerServer { server in
                server.script(path: "/pull", .uid("must-not-be-read"))
                let resolver = RecordingResolver([partnerHost: [loopbackV4]])
                let partner = makePartner(
                    "acme",
                    port: server.port,
                    token: makeToken(),
                    allowedHosts: ["api.partner.test"]
                )
                try await withHarness(try TransportHarness(partners: [partner], resolver: resolver)) { harness in
                    let report = await harness.process()
                    #expect(report.plan.decision(for: "acme") == .skip(.badURL))
                    #expect(report.results.isEmpty)
                    let stored = try await harness.stored()
                    #expect(stored.isEmpty)
                    #expect(resolver.names.isEmpty)
                    #expect(harness.loops.loopsHandedOut == 0)
                }
                #expect(server.acceptedConnections == 0)
            }
        }

        @Test("a name that does not resolve is a transport_error")
        func unresolvableName() async throws {
            let partner = makePartner("acme", host: "nowhere.partner.test", port: 443, token: makeToken())
            try await withHarness(try TransportHarness(partners: [partner])) { harness in
                let result = try harness.onlyResult(await harness.process())
                #expect(result.outcome == .transportError)
                #expect(harness.loops.loopsHandedOut == 0)
                #expect(try await harness.stored().isEmpty)
            }
        }

        static func context() -> PullContext {
            PullContext(
                edgeCookie: EdgeCookie(unchecked: TestPartners.edgeCookie(1)),
                partnerID: "acme",
                sourceDomain: "acme.example",
                now: TestWallClock().now()
            )
        }
    }
}
