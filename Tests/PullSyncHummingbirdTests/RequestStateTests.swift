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
        let kernel = PullKernel(
            registry: try PartnerRegistry([
                TestPartners.partner("a"),
                TestPartners.partner("v3", consent: PartnerConsentRequirements(tcfVendorID: 3)),
            ]),
            graph: graph,
            rateLimiter: InMemoryRateLimiter(),
            transport: ScriptedTransport(),
            consent: IABConsentRules()
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
        // Not organic: the middleware leaves the context alone.
        router.get("sync") { _, context in
            context.pullSync.edgeCookie == nil ? "untouched" : "filled"
        }
        return Application(router: router, services: [DispatcherService(dispatcher: dispatcher)])
    }

    @Test func aHandlerGetsTheConsentedEIDsOfItsRequest() async throws {
        let graph = InMemoryIdentityGraph()
        let known = EdgeCookie(unchecked: TestPartners.edgeCookie(7))
        _ = try await graph.createRoot(for: known, at: SystemWallClock().now())
        for id in Self.partnerIDs {
            graph.set(
                PartnerUID(uid: "uid-\(id)", syncedAt: SystemWallClock().now()),
                sourceDomain: "\(id).example",
                ecHash: String(known.hash)
            )
        }
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
