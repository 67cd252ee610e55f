import HTTPTypes
import Hummingbird
import Logging
import NIOEmbedded
import PullSyncHummingbird
import PullSyncKernel
import PullSyncTesting
import Synchronization

/// A returning browser's page view through `PullSyncMiddleware` when its EC is in the fresh-EC
/// memo (every UID fresh): the middleware's own cost on the commonest page view, the route's
/// response already made. The promise for it: a cookie read and one hash lookup. As in
/// measure 2: 500 known ECs in turn (the memo as full of them as the edge's), and the request
/// context `pullsync serve` uses (the middleware tells it what it found).
final class PageViewFixture: Sendable {
    let middleware: PullSyncMiddleware<EdgeRequestContext>
    /// One request per known EC (one, without an EC, for a new browser).
    let requests: [Request]
    let context: EdgeRequestContext
    let response: Response
    private let next = Atomic(0)

    /// Browsers sending `otherCookies` cookies besides their EC, or without an EC (`newBrowser`:
    /// the middleware issues one and sets its cookie).
    init(otherCookies: Int, newBrowser: Bool = false) async {
        let partners = (0..<6).map { TestPartners.partner("p\($0)") }
        let clock = TestWallClock()
        let ecs = (1...(newBrowser ? 1 : 500)).map { EdgeCookie(unchecked: TestPartners.edgeCookie($0)) }
        let records = ecs.map { ec in
            var record = ECRecord(ecHash: String(ec.hash), ecID: ec.value, createdAt: clock.now())
            for partner in partners {
                record.partners[partner.sourceDomain] = PartnerUID(uid: "u", syncedAt: clock.now())
            }
            return record
        }
        let kernel = PullKernel.benchmarked(partners, records: records, clock: clock)
        // Each EC's first page view is decided in full (every UID fresh) and fills the memo.
        for ec in ecs {
            await kernel.planWithoutSending(OrganicRequest(path: "/article", edgeCookie: ec.value, consent: .granted))
        }
        middleware = PullSyncMiddleware(
            dispatcher: PullDispatcher(kernel: kernel),
            issuer: EdgeCookieIssuer(secret: Array("0123456789abcdef0123".utf8)),
            clientIP: .header("X-Forwarded-For")
        )
        requests = ecs.map { ec in
            var cookies = (0..<otherCookies).map { "c\($0)=v\($0)-0123456789abcdef" }
            if !newBrowser { cookies.insert("ts-ec=\(ec.value)", at: cookies.count / 2) }
            var fields = HTTPFields()
            // One field, as Hummingbird's HTTP/1 server hands it over (the subscript's setter would
            // split it into a field per cookie).
            fields.append(HTTPField(name: .cookie, value: cookies.joined(separator: "; ")))
            fields[.userAgent] = "Mozilla/5.0 (X11; Linux x86_64) Benchmark"
            fields[HTTPField.Name("X-Forwarded-For")!] = "198.51.100.7"
            return Request(
                head: HTTPRequest(
                    method: .get,
                    scheme: "https",
                    authority: "www.example",
                    path: "/article/42",
                    headerFields: fields
                ),
                body: RequestBody(buffer: ByteBuffer())
            )
        }
        context = EdgeRequestContext(
            source: ApplicationRequestContextSource(channel: EmbeddedChannel(), logger: Logger(label: "bench"))
        )
        response = Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(string: "page")))
    }

    func view() async throws -> Response {
        let response = self.response
        let request = requests[next.add(1, ordering: .relaxed).oldValue % requests.count]
        return try await middleware.handle(request, context: context) { _, _ in response }
    }
}
