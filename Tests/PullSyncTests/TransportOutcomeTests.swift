import Foundation
import PullSync
import PullSyncTesting
import PartnerSimulator
import Testing

extension AllTransportTests {
    /// Every way a partner can answer, over real HTTPS on loopback, through the kernel: the classified
    /// outcome, what was stored (only a normal UID is), and that the call was made exactly once.
    @Suite("Transport: answers and misbehaviours")
    struct TransportOutcomeTests {
        struct Case: Sendable, CustomTestStringConvertible {
            var name: String
            var behavior: PartnerServer.Behavior
            var outcome: PullOutcome
            var status: Int?
            var testDescription: String { name }
        }

        static let uid512 = String(repeating: "u", count: 512)
        static let uid513 = String(repeating: "u", count: 513)

        static let cases: [Case] = [
            Case(name: "200 uid", behavior: .uid("user-42"), outcome: .uid("user-42"), status: 200),
            Case(name: "uid null", behavior: .json(#"{"uid": null}"#), outcome: .nullUID, status: 200),
            Case(name: "blank uid", behavior: .json(#"{"uid": "   "}"#), outcome: .nullUID, status: 200),
            Case(name: "empty uid", behavior: .json(#"{"uid": ""}"#), outcome: .nullUID, status: 200),
            Case(name: "missing uid", behavior: .json(#"{"other": "x"}"#), outcome: .nullUID, status: 200),
            Case(name: "404", behavior: .status(404), outcome: .notFound, status: 404),
            Case(name: "500", behavior: .status(500), outcome: .httpError(status: 500), status: 500),
            Case(name: "429", behavior: .status(429), outcome: .httpError(status: 429), status: 429),
            Case(name: "invalid JSON", behavior: .json(#"{"uid": "x""#), outcome: .invalidBody, status: 200),
            Case(name: "JSON array", behavior: .json(#"[{"uid": "x"}]"#), outcome: .invalidBody, status: 200),
            Case(name: "uid not a string", behavior: .json(#"{"uid": 42}"#), outcome: .invalidBody, status: 200),
            Case(name: "512-byte uid", behavior: .uid(uid512), outcome: .uid(uid512), status: 200),
            Case(name: "513-byte uid", behavior: .uid(uid513), outcome: .tooLarge, status: 200),
            Case(name: "connection reset", behavior: .reset, outcome: .transportError, status: nil),
            Case(name: "clean close without response", behavior: .closeWithoutResponse, outcome: .transportError),
        ]

        @Test(arguments: cases)
        func classifiesAndStoresOnlyAUID(_ testCase: Case) async throws {
            try await withPartnerServer { server in
                server.script(path: "/pull", testCase.behavior)
                let token = makeToken()
                let partner = makePartner("acme", port: server.port, token: token)
                try await withHarness(try TransportHarness(partners: [partner])) { harness in
                    let report = await harness.process()
                    #expect(report.plan.decision(for: "acme") == .dispatch)
                    let result = try harness.onlyResult(report)
                    #expect(result.outcome == testCase.outcome)
                    #expect(result.status == testCase.status)
                    // Exactly one request: no retry, whatever the answer.
                    #expect(server.requestCount(path: "/pull") == 1)
                    #expect(server.requests.count == 1)

                    let stored = try await harness.stored()
                    if case .uid(let uid, _) = testCase.outcome {
                        #expect(result.write == .stored)
                        #expect(stored == ["acme.example": PartnerUID(uid: uid, syncedAt: harness.clock.now())])
                    } else {
                        #expect(result.write == nil)
                        #expect(stored.isEmpty)
                    }
                    // The EC's root entry exists either way (issued on this request).
                    #expect(
                        try await harness.graph.record(ecHash: String(TestPartners.edgeCookie(1).prefix(64))) != nil
                    )
                }
            }
        }

        @Test("a redirect is never followed", arguments: ["allow-listed", "foreign"])
        func redirectNotFollowed(target: String) async throws {
            try await withPartnerServer { server in
                let location =
                    target == "allow-listed"
                    ? "https://\(partnerHost):\(server.port)/elsewhere?ec_id=stolen"
                    : "https://foreign.example/steal"
                server.script(path: "/pull", .redirect(status: 302, location: location))
                server.script(path: "/elsewhere", .uid("must-not-be-read"))
                let partner = makePartner("acme", port: server.port, token: makeToken())
                try await withHarness(try TransportHarness(partners: [partner])) { harness in
                    let result = try harness.onlyResult(await harness.process())
                    #expect(result.outcome == .httpError(status: 302))
                    #expect(result.status == 302)
                    #expect(server.requests.count == 1)
                    #expect(server.requestCount(path: "/elsewhere") == 0)
                    #expect(try await harness.stored().isEmpty)
                }
            }
        }

        @Test(
            "a body of exactly 64 KiB is read; one byte more is too_large",
            arguments: [65_536, 65_537],
            [true, false]
        )
        func bodyLimitBoundary(size: Int, declareLength: Bool) async throws {
            try await withPartnerServer { server in
                // A valid document padded with trailing whitespace to `size` bytes.
                let document = Array(#"{"uid":"edge-uid"}"#.utf8)
                let body = document + Array(repeating: UInt8(ascii: " "), count: size - document.count)
                let headers: [(String, String)] = declareLength ? [] : [("Transfer-Encoding", "chunked")]
                server.script(path: "/pull", .respond(status: 200, headers: headers, body: body))
                let partner = makePartner("acme", port: server.port, token: makeToken())
                try await withHarness(try TransportHarness(partners: [partner])) { harness in
                    let result = try harness.onlyResult(await harness.process())
                    let stored = try await harness.stored()
                    if size <= 64 << 10 {
                        #expect(result.outcome == .uid("edge-uid"))
                        #expect(stored["acme.example"]?.uid == "edge-uid")
                    } else {
                        #expect(result.outcome == .tooLarge)
                        #expect(stored.isEmpty)
                    }
                    #expect(server.requests.count == 1)
                }
            }
        }

        @Test("a 10 MiB body is abandoned as too_large", arguments: [true, false])
        func hugeBody(declareLength: Bool) async throws {
            try await withPartnerServer { server in
                let size = 10 << 20
                server.script(path: "/pull", .large(byteCount: size, declareLength: declareLength))
                let partner = makePartner("acme", port: server.port, token: makeToken())
                try await withHarness(try TransportHarness(partners: [partner])) { harness in
                    let result = try harness.onlyResult(await harness.process())
                    #expect(result.outcome == .tooLarge)
                    #expect(try await harness.stored().isEmpty)
                    #expect(server.requests.count == 1)
                    // The transport lets the connection go: the server sees it close without a shutdown.
                    try #require(await eventually { server.requestsInProgress == 0 }, "the server to see the client go")
                    // What the server could write is bounded by socket and TLS buffers, not by the body: far
                    // below the 10 MiB a client reading to the end would take (see PartnerServerMisbehaviorTests).
                    #expect(server.bytesWritten(path: "/pull") < 4 << 20)
                }
            }
        }
    }
}

/// Limits outside what AsyncHTTPClient's accumulator takes (it traps outside 0...UInt32.max) are clamped.
@Suite struct TransportBodyLimitBoundsTests {
    @Test("a body limit below zero refuses any body, one above UInt32.max takes it", arguments: [-1, Int.max])
    func outOfRangeLimit(maxBodyBytes: Int) async throws {
        try await withPartnerServer { server in
            server.script(path: "/pull", .uid("user-42"))
            let harness = try TransportHarness(partners: [])
            let request = PullRequest(
                url: PartnerURL(scheme: "https", host: partnerHost, port: server.port, path: "/pull")
            )
            let result = await harness.transport.send(
                request,
                limits: TransportLimits(timeout: .seconds(30), maxBodyBytes: maxBodyBytes)
            )
            await harness.shutdown()
            switch result {
            case .failure(.tooLarge): #expect(maxBodyBytes < 0)
            case .response(let status, _, let body):
                #expect(maxBodyBytes == Int.max)
                #expect(status == 200)
                #expect(String(decoding: body, as: UTF8.self).contains("user-42"))
            default: Issue.record("unexpected \(result)")
            }
        }
    }
}

/// A resolver that says when the lookup has started, then waits until it is cancelled.
private struct AnnouncingSilentResolver: HostResolver {
    let started: TestGate
    func resolve(host: String) async throws -> [IPAddress] {
        started.open()
        _ = await TestGate().waitUnlessCancelled()
        throw CancellationError()
    }
}

@Suite struct TransportCancelledLookupTests {
    @Test("a call cancelled during its name lookup (shutdown) ends as a timeout, as one cancelled later does")
    func cancelledDuringLookup() async throws {
        let started = TestGate()
        let transport = HTTPPullTransport(
            configuration: .init(allowLoopback: true, resolver: AnnouncingSilentResolver(started: started))
        )
        let request = PullRequest(url: PartnerURL(scheme: "https", host: "slow-dns.partner.test", path: "/pull"))
        let call = Task { await transport.send(request, limits: TransportLimits(timeout: .seconds(600))) }
        await started.wait()
        call.cancel()
        let result = await call.value
        await transport.shutdown()
        guard case .failure(.timeout) = result else {
            Issue.record("expected a timeout, got \(result)")
            return
        }
    }
}
