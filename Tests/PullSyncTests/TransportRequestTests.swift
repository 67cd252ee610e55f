import Foundation
import InMemoryTracing
import Tracing
import PullSync
import PullSyncTesting
import PartnerSimulator
import Testing

extension AllTransportTests {
    /// What arrives at the partner, address pinning, bounded fan-out over real sockets.
    @Suite("Transport: the request, pinning and fan-out")
    struct TransportRequestTests {
        /// A tracer bootstrapped for the whole test process, once (bootstrapping twice traps).
        static let processTracer: InMemoryTracer = {
            let tracer = InMemoryTracer()
            InstrumentationSystem.bootstrap(tracer)
            return tracer
        }()

        @Test("calls are never traced, even with a tracer bootstrapped: no span, no trace context to the partner")
        func notTraced() async throws {
            let tracer = Self.processTracer
            try await withPartnerServer { server in
                server.script(path: "/pull", .uid("untraced-uid"))
                let partner = makePartner("acme", port: server.port, token: makeToken())
                try await withHarness(try TransportHarness(partners: [partner])) { harness in
                    // The tracer is live: a span started here is recorded.
                    let report = await withSpan("the test's own span") { _ in await harness.process() }
                    let result = try harness.onlyResult(report)
                    #expect(result.outcome == .uid("untraced-uid"))
                }
                // Other tests' clients may record spans meanwhile; none may be this partner's call.
                let spans = tracer.finishedSpans
                #expect(spans.contains { $0.operationName == "the test's own span" })
                #expect(!"\(spans.map(\.attributes))".contains(TestPartners.edgeCookie(1)))
                let request = try #require(server.requests.first)
                #expect(request.header(InMemoryTracer.traceIDKey) == nil)
                #expect(request.header(InMemoryTracer.spanIDKey) == nil)
            }
        }

        @Test("the default request: GET with ec_id only and the bearer token; never the client IP")
        func defaultRequestShape() async throws {
            try await withPartnerServer { server in
                server.script(path: "/pull", .uid("shape-uid"))
                let token = makeToken()
                let partner = makePartner("acme", port: server.port, token: token)
                try await withHarness(try TransportHarness(partners: [partner])) { harness in
                    let result = try harness.onlyResult(await harness.process())
                    #expect(result.outcome == .uid("shape-uid"))
                }
                let request = try #require(server.requests.first)
                #expect(server.requests.count == 1)
                #expect(request.method == "GET")
                #expect(request.path == "/pull")
                #expect(request.queryItems == [.init(name: "ec_id", value: TestPartners.edgeCookie(1))])
                #expect(request.header("Authorization") == "Bearer \(token)")
                #expect(request.header("Host") == "\(partnerHost):\(server.port)")
                #expect(request.body.isEmpty)
                Self.expectNoClientIP(in: request)
            }
        }

        @Test("the query carries exactly the variables the partner asks for")
        func onlyTheAskedVariables() async throws {
            try await withPartnerServer { server in
                server.script(path: "/pull", .uid("templated-uid"))
                let token = makeToken()
                let partner = makePartner(
                    "acme",
                    port: server.port,
                    token: token,
                    query: [
                        .init(name: "h", value: template("{ec_hash}")),
                        .init(name: "pid", value: template("{partner_id}")),
                    ],
                    headers: [.init(name: "X-Publisher", value: template("pub-{source_domain}"))]
                )
                try await withHarness(try TransportHarness(partners: [partner])) { harness in
                    let result = try harness.onlyResult(await harness.process())
                    #expect(result.outcome == .uid("templated-uid"))
                }
                let request = try #require(server.requests.first)
                #expect(
                    request.queryItems == [
                        .init(name: "h", value: String(TestPartners.edgeCookie(1).prefix(64))),
                        .init(name: "pid", value: "acme"),
                    ]
                )
                #expect(request.queryValue("ec_id") == nil)
                #expect(request.header("X-Publisher") == "pub-acme.example")
                #expect(request.header("Authorization") == "Bearer \(token)")
                Self.expectNoClientIP(in: request)
            }
        }

        @Test("a token sent in its own header arrives there, and nowhere else")
        func headerTemplateToken() async throws {
            try await withPartnerServer { server in
                server.script(path: "/pull", .uid("header-uid"))
                let token = makeToken()
                let partner = makePartner(
                    "acme",
                    port: server.port,
                    token: token,
                    headers: [.init(name: "X-Api-Key", value: template("{token}"))],
                    auth: .headerTemplate(.environment("ACME_KEY"))
                )
                try await withHarness(try TransportHarness(partners: [partner])) { harness in
                    let result = try harness.onlyResult(await harness.process())
                    #expect(result.outcome == .uid("header-uid"))
                }
                let request = try #require(server.requests.first)
                #expect(request.header("X-Api-Key") == token)
                #expect(request.header("Authorization") == nil)
                #expect(!request.uri.contains(token))
            }
        }

        static func expectNoClientIP(
            in request: PartnerServer.RecordedRequest,
            sourceLocation: SourceLocation = #_sourceLocation
        ) {
            #expect(!request.uri.contains(clientIP), sourceLocation: sourceLocation)
            for (name, value) in request.headers {
                #expect(!value.contains(clientIP), "header \(name)", sourceLocation: sourceLocation)
            }
            for name in ["X-Forwarded-For", "Forwarded", "X-Real-IP", "True-Client-IP"] {
                #expect(request.header(name) == nil, "header \(name)", sourceLocation: sourceLocation)
            }
            #expect(!String(decoding: request.body, as: UTF8.self).contains(clientIP), sourceLocation: sourceLocation)
        }

        @Test("a checked address stays pinned until its TTL, then the name is resolved and checked again")
        func pinnedUntilTTL() async throws {
            try await withPartnerServer { server in
                server.script(path: "/pull", .uid("pinned-uid"))
                let resolver = ChangingResolver([loopbackV4])
                let ttl = Duration.seconds(60)
                let partner = makePartner("acme", port: server.port, token: makeToken())
                let harness = try TransportHarness(partners: [partner], resolver: resolver, addressTTL: ttl)
                try await withHarness(harness) { harness in
                    // The TTL runs on the harness's test clock: time passes only when the test moves it.
                    #expect(try harness.onlyResult(await harness.process(1)).outcome == .uid("pinned-uid"))
                    #expect(resolver.lookups == 1)

                    // The name now points at a private address (DNS rebinding). Within the TTL the checked
                    // address is still used, and the name isn't even looked up again.
                    resolver.answer([ip("10.0.0.5")])
                    harness.clock.advance(by: ttl - .seconds(1))
                    #expect(try harness.onlyResult(await harness.process(2)).outcome == .uid("pinned-uid"))
                    #expect(resolver.lookups == 1)
                    #expect(server.requests.count == 2)

                    // After the TTL the new answer is looked up, checked and refused: nothing is sent.
                    harness.clock.advance(by: .seconds(1))
                    let loopsBefore = harness.loops.loopsHandedOut
                    let refused = try harness.onlyResult(await harness.process(3))
                    #expect(refused.outcome == .refusedTarget)
                    #expect(resolver.lookups == 2)
                    #expect(server.requests.count == 2)
                    #expect(harness.loops.loopsHandedOut == loopsBefore)

                    #expect(try await harness.stored(1)["acme.example"]?.uid == "pinned-uid")
                    #expect(try await harness.stored(2)["acme.example"]?.uid == "pinned-uid")
                    #expect(try await harness.stored(3).isEmpty)
                }
            }
        }

        @Test("a name resolving to ::1 is pinned to it and served over IPv6")
        func ipv6Loopback() async throws {
            let server = try await PartnerServer.start(tls: try transportCA.issue(dnsNames: [partnerHost]), host: "::1")
            do {
                server.script(path: "/pull", .uid("v6-uid"))
                let partner = makePartner("acme", port: server.port, token: makeToken())
                let resolver = StaticHostResolver([partnerHost: [ip("::1")]])
                try await withHarness(try TransportHarness(partners: [partner], resolver: resolver)) { harness in
                    let result = try harness.onlyResult(await harness.process())
                    #expect(result.outcome == .uid("v6-uid"))
                    #expect(try await harness.stored()["acme.example"]?.uid == "v6-uid")
                }
                #expect(server.requests.count == 1)
                try await server.shutdown()
            } catch {
                try? await server.shutdown()
                throw error
            }
        }

        @Test("a call in flight when its host's address changes finishes on the old connection")
        func addressChangeKeepsCallsInFlight() async throws {
            try await withPartnerServer { server in
                // The answer is held until the name has moved and the next call has failed, so the first
                // call is surely still out meanwhile (a 2 s latency can't promise that on a busy machine).
                let gate = ResponseGate()
                server.script(path: "/slow", .held(gate, .uid("slow-uid")))
                let resolver = ChangingResolver([loopbackV4])
                let ttl = Duration.seconds(60)
                let partner = makePartner("acme", path: "/slow", port: server.port, token: makeToken())
                let harness = try TransportHarness(partners: [partner], resolver: resolver, addressTTL: ttl)
                let request = try partner.adapter.makeRequest(for: TransportTargetTests.context())
                let limits = TransportLimits(timeout: .seconds(10))
                // The transport runs as a service (as in `pullsync serve`), retiring replaced clients.
                let service = Task { try await harness.transport.run() }
                let inFlight = Task { await harness.transport.send(request, limits: limits) }
                try #require(await eventually { server.requestsInProgress == 1 }, "the slow call to reach the server")

                // The name moves (127.0.0.2: loopback, nothing listens there); after the TTL, the next call
                // resolves it again, gets a new client, and the old one is retired.
                resolver.answer([.v4(127, 0, 0, 2)])
                harness.clock.advance(by: ttl)
                let moved = await harness.transport.send(request, limits: limits)
                guard case .failure(.transportError) = moved else {
                    Issue.record("expected transport_error from an address nothing listens on, got \(moved)")
                    return
                }
                #expect(resolver.lookups == 2)

                // Retiring the old client must not cut the call it is still carrying.
                gate.open()
                let result = await inFlight.value
                if case .response(let status, _, let body) = result {
                    #expect(status == 200)
                    #expect(String(decoding: body, as: UTF8.self) == #"{"uid":"slow-uid"}"#)
                } else {
                    Issue.record("the in-flight call was cut by the address change: \(result)")
                }
                // Then the replaced client retires: its kept-alive connection closes.
                try #require(await eventually { server.openConnections == 0 }, "the replaced client to close its connection")
                service.cancel()
                try? await service.value
                await harness.shutdown()
            }
        }

        @Test("six slow partners on one server: at most three requests in flight at once")
        func boundedFanOut() async throws {
            try await withPartnerServer { server in
                let ids = (0..<6).map { "p\($0)" }
                // Every answer held until three calls are in flight: the window is seen full, however
                // busy the machine.
                let gate = ResponseGate()
                for id in ids {
                    server.script(path: "/\(id)", .held(gate, .uid("uid-\(id)")))
                }
                let partners = ids.map { makePartner($0, path: "/\($0)", port: server.port, token: makeToken()) }
                try await withHarness(try TransportHarness(partners: partners)) { harness in
                    async let processed = harness.process()
                    #expect(await eventually { server.requestsInProgress == 3 })
                    gate.open()
                    let report = await processed
                    #expect(report.results.count == 6)
                    for result in report.results {
                        #expect(result.outcome == .uid("uid-\(result.partnerID)"))
                        #expect(result.write == .stored)
                    }
                    let stored = try await harness.stored()
                    #expect(stored.count == 6)
                    for id in ids {
                        #expect(stored["\(id).example"]?.uid == "uid-\(id)")
                    }
                }
                #expect(server.requests.count == 6)
                for id in ids {
                    #expect(server.requestCount(path: "/\(id)") == 1)
                }
                #expect(server.peakConcurrentRequests == 3)
            }
        }
    }
}
