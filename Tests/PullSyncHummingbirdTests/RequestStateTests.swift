import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import PullSync
import PullSyncConsent
import PullSyncHummingbird
import PullSyncStorage
import PullSyncTesting
import Testing

/// An application's own context, as the documentation shows it.
struct AuctionContext: PullSyncRequestContext {
    var coreContext: CoreRequestContextStorage
    var pullSync = PullSyncRequestState()

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }
}

/// Issue 20: a route handler gets the request's consented EIDs in one line, from the state the
/// middleware leaves in the context.
@Suite struct RequestStateTests {
    static let partnerIDs = ["a", "v3"]

    /// The middleware and a route that answers with the request's EIDs, in the header format.
    static func application(graph: InMemoryIdentityGraph) throws -> some ApplicationProtocol {
        try application(graph: graph, transport: ScriptedTransport()).application
    }

    static func application(
        graph: InMemoryIdentityGraph,
        transport: ScriptedTransport
    ) throws -> (application: some ApplicationProtocol, dispatcher: PullDispatcher) {
        let kernel = PullKernel(
            registry: try PartnerRegistry([
                TestPartners.partner("a"),
                TestPartners.partner("v3", consent: PartnerConsentRequirements(tcfVendorID: 3)),
            ]),
            graph: graph,
            rateLimiter: InMemoryRateLimiter(),
            transport: transport,
            consent: IABConsentRules(),
            clock: SystemWallClock()
        )
        let dispatcher = PullDispatcher(kernel: kernel)
        let router = Router(context: AuctionContext.self)
        router.add(
            middleware: PullSyncMiddleware(
                dispatcher: dispatcher,
                issuer: EdgeCookieIssuer(secret: Array("0123456789abcdef0123".utf8)),
                clientIP: .header("X-Forwarded-For")
            )
        )
        router.get("**") { _, context in
            EIDsHeader.value(for: await context.pullSync.eids()) ?? "none"
        }
        router.get("ec") { _, context in context.pullSync.edgeCookie?.value ?? "none" }
        // Not organic: the middleware leaves the context alone.
        router.get("sync") { _, context in
            context.pullSync.edgeCookie == nil ? "untouched" : "filled"
        }
        return (Application(router: router, services: [DispatcherService(dispatcher: dispatcher)]), dispatcher)
    }

    /// A graph that knows `known`, with a fresh UID from every partner.
    static func knownBrowser(_ known: EdgeCookie) async throws -> InMemoryIdentityGraph {
        let graph = InMemoryIdentityGraph()
        _ = try await graph.createRoot(for: known, at: SystemWallClock().now())
        for id in Self.partnerIDs {
            graph.set(
                PartnerUID(uid: "uid-\(id)", syncedAt: SystemWallClock().now()),
                sourceDomain: "\(id).example",
                ecHash: String(known.hash)
            )
        }
        return graph
    }

    @Test func aHandlerGetsTheConsentedEIDsOfItsRequest() async throws {
        let known = EdgeCookie(unchecked: TestPartners.edgeCookie(7))
        let graph = try await Self.knownBrowser(known)
        try await Self.application(graph: graph).test(.router) { client in
            func eids(_ fields: [(String, String)]) async throws -> [OpenRTB.EIDObject] {
                let response = try await client.execute(uri: "/article", method: .get, headers: headers(fields))
                let body = String(buffer: response.body)
                return body == "none" ? [] : try OpenRTB.eids(fromHeader: body)
            }
            let cookie = ("Cookie", "ts-ec=\(known.value)")
            #expect(try await eids([cookie]).map(\.source) == ["a.example", "v3.example"])
            // The TC string of the TCF specification's example consents to vendors 2, 6 and 8: not
            // to v3, and `a` has no vendor ID where TCF applies.
            let tcf = ("Cookie", "ts-ec=\(known.value); euconsent-v2=\(ConsentStrings.tcfExample)")
            #expect(try await eids([tcf]) == [])
            #expect(try await eids([cookie, ("Sec-GPC", "1")]) == [])
            // A new browser: an EC is issued, and it has no EIDs yet.
            #expect(try await eids([("X-Forwarded-For", "203.0.113.9")]) == [])

            let sync = try await client.execute(uri: "/sync", method: .get, headers: headers([cookie]))
            #expect(String(buffer: sync.body) == "untouched")
        }
    }

    /// The middleware asks the fresh-EC memo itself, on the EC in the `Cookie` header: a returning
    /// browser whose UIDs are all fresh is skipped before anything is made for it, and its handler
    /// still gets its EC and EIDs.
    @Test func aReturningBrowserTheMemoSkipsKeepsItsECAndEIDs() async throws {
        let known = EdgeCookie(unchecked: TestPartners.edgeCookie(7))
        let graph = try await Self.knownBrowser(known)
        let transport = ScriptedTransport()
        let (application, dispatcher) = try Self.application(graph: graph, transport: transport)
        try await application.test(.router) { client in
            let cookie = headers([("Cookie", "theme=dark; ts-ec=\(known.value)")])
            // The first page view is decided in full: every UID fresh, so the memo holds from then on.
            _ = try await client.execute(uri: "/article", method: .get, headers: cookie)
            #expect(await eventually { dispatcher.statistics.processed == 1 })
            #expect(dispatcher.statistics.skips["fresh"] == 2)

            for _ in 0..<3 {
                let page = try await client.execute(uri: "/article", method: .get, headers: cookie)
                #expect(try OpenRTB.eids(fromHeader: String(buffer: page.body)).map(\.source) == ["a.example", "v3.example"])
                let ec = try await client.execute(uri: "/ec", method: .get, headers: cookie)
                #expect(String(buffer: ec.body) == known.value)
            }
            #expect(dispatcher.statistics.skippedAtSubmit == 6)
            #expect(dispatcher.statistics.enqueued == 1)
            #expect(transport.requests.isEmpty)
            // Other consent signals are not what the memo was made under: decided in full again.
            let other = headers([("Cookie", "ts-ec=\(known.value); us_privacy=1YNN")])
            _ = try await client.execute(uri: "/article", method: .get, headers: other)
            #expect(await eventually { dispatcher.statistics.processed == 2 })
            // A malformed EC is still refused as one.
            let malformed = headers([("Cookie", "ts-ec=\(known.value.dropLast())")])
            _ = try await client.execute(uri: "/article", method: .get, headers: malformed)
            #expect(dispatcher.statistics.skippedAtSubmit == 7)
            #expect(dispatcher.statistics.enqueued == 2)
        }
    }

    @Test func theHeaderFormatIsBase64URLWithoutPaddingAndReadsBack() throws {
        let eids = [
            EID(source: "a.example", uids: [EID.UID(id: "?>>~~", atype: 3)], inserter: "pub.example", mm: 2)
        ]
        let value = try #require(EIDsHeader.value(for: eids))
        #expect(!value.contains("=") && !value.contains("+") && !value.contains("/"))
        #expect(try EIDsHeader.eids(from: value) == eids)
        #expect(try OpenRTB.eids(fromHeader: value).first?.uids == [OpenRTB.UID(id: "?>>~~", atype: 3)])
        #expect(EIDsHeader.value(for: []) == nil)
        #expect(throws: DecodingError.self) { try EIDsHeader.eids(from: "***") }
    }
}

extension ConsentStrings {
    /// TCF v2 specification example: purposes 1-3, vendors 2, 6 and 8.
    static let tcfExample = "COvFyGBOvFyGBAbAAAENAPCAAOAAAAAAAAAAAEEUACCKAAA"
}
