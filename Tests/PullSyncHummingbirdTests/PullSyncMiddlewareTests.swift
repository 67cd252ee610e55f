import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOEmbedded
import PullSync
import PullSyncConsent
@testable import PullSyncHummingbird
import PullSyncStorage
import PullSyncTesting
import Synchronization
import Testing

/// A Hummingbird app with the middleware, a dispatcher running as one of its services, and a
/// scripted partner transport (the partner side is the kernel's seam here; real partner HTTP
/// is covered by the edge service's tests).
struct MiddlewareHarness {
    let transport = ScriptedTransport()
    let graph = InMemoryIdentityGraph()
    let dispatcher: PullDispatcher
    let application: Application<RouterResponder<BasicRequestContext>>
    static let partnerIDs = ["a", "b"]

    init(
        issue: Bool = true,
        consent: [String: PartnerConsentRequirements] = [:],
        cookie: PullSyncMiddleware<BasicRequestContext>.CookieOptions = .init()
    ) throws {
        for id in Self.partnerIDs { transport.script(TestPartners.host(id), .uid("uid-\(id)")) }
        let kernel = PullKernel(
            registry: try PartnerRegistry(
                Self.partnerIDs.map { TestPartners.partner($0, consent: consent[$0] ?? PartnerConsentRequirements()) }
            ),
            graph: graph,
            rateLimiter: InMemoryRateLimiter(),
            transport: transport,
            consent: IABConsentRules(),
            clock: SystemWallClock(),
            random: SeededRandomSource(seed: 3)
        )
        dispatcher = PullDispatcher(kernel: kernel)
        let router = Router()
        router.add(
            middleware: PullSyncMiddleware(
                dispatcher: dispatcher,
                issuer: issue ? EdgeCookieIssuer(secret: Array("0123456789abcdef0123".utf8)) : nil,
                clientIP: .header("X-Forwarded-For"),
                cookie: cookie
            )
        )
        router.get("/") { _, _ in "page body" }
        router.get("**") { _, _ in "page body" }
        router.post("auction") { _, _ in "bids" }
        application = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            services: [DispatcherService(dispatcher: dispatcher)]
        )
    }

    /// Waits until the dispatcher has processed `count` requests (PullSyncTesting's `eventually`: a
    /// hang guard, not a timing assertion).
    func processed(_ count: Int) async -> Bool {
        await eventually { dispatcher.statistics.processed >= count }
    }

    /// Waits until `count` requests were turned away at submission. The middleware submits once the
    /// response body is written, so the client may read the answer before that: wait for the count,
    /// never for a while.
    func skippedAtSubmit(_ count: Int) async -> Bool {
        await eventually { dispatcher.statistics.skippedAtSubmit >= count }
    }
}

func headers(_ fields: [(String, String)]) -> HTTPFields {
    var result = HTTPFields()
    for (name, value) in fields { result.append(HTTPField(name: HTTPField.Name(name)!, value: value)) }
    return result
}

/// A kernel for partner `a` (whose calls a scripted transport would answer), on in-memory stores.
func onePartnerKernel(_ configuration: PullSyncConfiguration = PullSyncConfiguration()) throws -> PullKernel {
    PullKernel(
        registry: try PartnerRegistry([TestPartners.partner("a")]),
        configuration: configuration,
        graph: InMemoryIdentityGraph(),
        rateLimiter: InMemoryRateLimiter(),
        transport: ScriptedTransport(),
        consent: IABConsentRules(),
        clock: SystemWallClock(),
        random: SeededRandomSource(seed: 3)
    )
}

func ecCookie(from response: TestResponse) -> String? {
    guard let setCookie = response.headers[.setCookie], setCookie.hasPrefix("ts-ec=") else { return nil }
    return String(setCookie.dropFirst(6).prefix { $0 != ";" })
}

@Suite struct PullSyncMiddlewareTests {
    @Test func anOrganicRequestIssuesAnECAndCallsEveryPartnerOnThatRequest() async throws {
        let harness = try MiddlewareHarness()
        try await harness.application.test(.live) { client in
            let response = try await client.execute(
                uri: "/news/today",
                method: .get,
                headers: headers([("X-Forwarded-For", "203.0.113.9, 10.0.0.1")])
            )
            #expect(response.status == .ok)
            #expect(String(buffer: response.body) == "page body")
            let ec = try #require(ecCookie(from: response))
            #expect(DefaultEdgeCookieFormat().parse(ec) != nil)
            #expect(response.headers[.setCookie]?.contains("HttpOnly") == true)
            #expect(response.headers[.setCookie]?.contains("SameSite=Lax") == true)
            #expect(await harness.processed(1))
            let record = try #require(try await harness.graph.record(ecHash: String(ec.prefix(64))))
            #expect(record.partners["a.example"]?.uid == "uid-a")
            #expect(record.partners["b.example"]?.uid == "uid-b")
            #expect(harness.transport.requests.count == 2)
        }
    }

    @Test(arguments: ["/auction", "/sync", "/identify", "/admin/x", "/_pullsync/ids/x", "/SYNC"])
    func excludedRoutesNeverCallPartnersNorIssue(path: String) async throws {
        let harness = try MiddlewareHarness()
        try await harness.application.test(.live) { client in
            let response = try await client.execute(
                uri: path,
                method: path == "/auction" ? .post : .get,
                headers: headers([("X-Forwarded-For", "203.0.113.9")])
            )
            #expect(response.status == .ok)
            #expect(response.headers[.setCookie] == nil)
            // Control, and a marker: an organic page through the same app (and connection, handled
            // after the first response was written) does reach the partners.
            _ = try await client.execute(
                uri: "/page",
                method: .get,
                headers: headers([("X-Forwarded-For", "203.0.113.9")])
            )
            #expect(await harness.processed(1))
            // Only the control page was handed to the dispatcher, and only it called the partners.
            #expect(harness.dispatcher.statistics.enqueued == 1)
            #expect(harness.dispatcher.statistics.skippedAtSubmit == 0)
            #expect(harness.transport.requests.count == 2)
        }
    }

    @Test(arguments: [[("Sec-GPC", "1")], [("Cookie", "ts-consent=0")]])
    func optOutSignalsNeverCallPartnersNorIssue(signal: [(String, String)]) async throws {
        let harness = try MiddlewareHarness()
        try await harness.application.test(.live) { client in
            let response = try await client.execute(
                uri: "/",
                method: .get,
                headers: headers([("X-Forwarded-For", "203.0.113.9")] + signal)
            )
            #expect(response.status == .ok)
            #expect(response.headers[.setCookie] == nil)
            // With a known EC and the opt-out, still nothing.
            let known = TestPartners.edgeCookie(5)
            _ = try await harness.graph.createRoot(for: EdgeCookie(unchecked: known), at: SystemWallClock().now())
            let cookie = signal[0].0 == "Cookie" ? "ts-ec=\(known); ts-consent=0" : "ts-ec=\(known)"
            var fields = [("X-Forwarded-For", "203.0.113.9"), ("Cookie", cookie)]
            if signal[0].0 == "Sec-GPC" { fields.append(("Sec-GPC", "1")) }
            _ = try await client.execute(uri: "/", method: .get, headers: headers(fields))
            // Both were turned away at submission, so no partner call can follow.
            #expect(await harness.skippedAtSubmit(2))
            #expect(harness.dispatcher.statistics.enqueued == 0)
            #expect(harness.transport.requests.isEmpty)
            #expect(harness.dispatcher.statistics.skippedAtSubmit == 2)
        }
    }

    @Test(arguments: [
        [("Cookie", "ts-consent=0")], [("Sec-GPC", "1")], [("Cookie", "us_privacy=1YYN")],
        [("Cookie", "__gpp=DBABTA~1NYN")],
    ])
    func aKnownECIsWithdrawnWhenItsBrowserDeniesConsent(signal: [(String, String)]) async throws {
        let harness = try MiddlewareHarness()
        let known = TestPartners.edgeCookie(11)
        let hash = String(known.prefix(64))
        _ = try await harness.graph.createRoot(for: EdgeCookie(unchecked: known), at: SystemWallClock().now())
        harness.graph.set(
            PartnerUID(uid: "old", syncedAt: SystemWallClock().now()),
            sourceDomain: "a.example",
            ecHash: hash
        )
        try await harness.application.test(.live) { client in
            let cookie = (["ts-ec=\(known)"] + signal.filter { $0.0 == "Cookie" }.map(\.1)).joined(separator: "; ")
            let response = try await client.execute(
                uri: "/page",
                method: .get,
                headers: headers(
                    [("X-Forwarded-For", "203.0.113.9"), ("Cookie", cookie)] + signal.filter { $0.0 != "Cookie" }
                )
            )
            #expect(response.status == .ok)
            #expect(response.headers[.setCookie] == nil)
            #expect(try await eventually { try await harness.graph.record(ecHash: hash)?.withdrawn == true })
            #expect(try await harness.graph.record(ecHash: hash)?.partners.isEmpty == true)
            // Consent given again: the EC still calls no one.
            _ = try await client.execute(
                uri: "/page",
                method: .get,
                headers: headers([("X-Forwarded-For", "203.0.113.9"), ("Cookie", "ts-ec=\(known)")])
            )
            #expect(await harness.processed(1))
            #expect(harness.transport.requests.isEmpty)
        }
    }

    @Test func theTCStringCookieDecidesPerPartner() async throws {
        // The TCF v2 specification's URL example: purposes 1-3 and vendors 2, 6, 8 consented.
        let tcf = "COvFyGBOvFyGBAbAAAENAPCAAOAAAAAAAAAAAEEUACCKAAA"
        let harness = try MiddlewareHarness(
            consent: ["a": PartnerConsentRequirements(tcfVendorID: 2), "b": PartnerConsentRequirements(tcfVendorID: 3)]
        )
        try await harness.application.test(.live) { client in
            let response = try await client.execute(
                uri: "/page",
                method: .get,
                headers: headers([("X-Forwarded-For", "203.0.113.9"), ("Cookie", "euconsent-v2=\(tcf)")])
            )
            // Per-partner consent doesn't stop the EC: the browser consents to some partners.
            #expect(ecCookie(from: response) != nil)
            #expect(await harness.processed(1))
            #expect(harness.transport.requests.map(\.url.host) == [TestPartners.host("a")])
            #expect(harness.dispatcher.statistics.skips["tcf_consent"] == 1)
        }
    }

    @Test func aWellFormedUnknownECNeverCausesACall() async throws {
        let harness = try MiddlewareHarness()
        try await harness.application.test(.live) { client in
            let spoofed = TestPartners.edgeCookie(424_242)
            let response = try await client.execute(
                uri: "/",
                method: .get,
                headers: headers([("X-Forwarded-For", "203.0.113.9"), ("Cookie", "ts-ec=\(spoofed)")])
            )
            #expect(response.status == .ok)
            #expect(response.headers[.setCookie] == nil)
            #expect(await harness.processed(1))
            #expect(harness.transport.requests.isEmpty)
            #expect(try await harness.graph.record(ecHash: String(spoofed.prefix(64))) == nil)
        }
    }

    @Test func aKnownECIsUsedAsIsAndNotReissued() async throws {
        let harness = try MiddlewareHarness()
        let known = TestPartners.edgeCookie(7)
        _ = try await harness.graph.createRoot(for: EdgeCookie(unchecked: known), at: SystemWallClock().now())
        try await harness.application.test(.live) { client in
            let response = try await client.execute(
                uri: "/a",
                method: .get,
                headers: headers([("X-Forwarded-For", "203.0.113.9"), ("Cookie", "other=1; ts-ec=\(known)")])
            )
            #expect(response.headers[.setCookie] == nil)
            #expect(await harness.processed(1))
            #expect(harness.transport.requests.count == 2)
            #expect(harness.transport.requests.allSatisfy { $0.query.first?.value == known })
        }
    }

    @Test func withoutAnIssuerNoECIsIssued() async throws {
        let harness = try MiddlewareHarness(issue: false)
        try await harness.application.test(.live) { client in
            let response = try await client.execute(
                uri: "/",
                method: .get,
                headers: headers([("X-Forwarded-For", "203.0.113.9")])
            )
            #expect(response.headers[.setCookie] == nil)
            // No EC, so the page is turned away at submission: no partner call can follow.
            #expect(await harness.skippedAtSubmit(1))
            #expect(harness.dispatcher.statistics.enqueued == 0)
            #expect(harness.transport.requests.isEmpty)
        }
    }
}

@Suite struct IssuedCookieTests {
    typealias Options = PullSyncMiddleware<BasicRequestContext>.CookieOptions

    @Test(
        "an issued EC's Set-Cookie holds what Hummingbird's Cookie writes, whatever the options",
        arguments: [
            Options(),
            Options(name: "edge_id", maxAge: 3600, secure: true, domain: "example.com"),
            Options(secure: true),
            Options(domain: "news.example"),
        ]
    )
    func setCookieAsHummingbirdWritesIt(options: Options) async throws {
        let harness = try MiddlewareHarness(cookie: options)
        try await harness.application.test(.router) { client in
            let response = try await client.execute(
                uri: "/",
                method: .get,
                headers: headers([("X-Forwarded-For", "203.0.113.9")])
            )
            let line = try #require(response.headers[.setCookie])
            let value = try #require(line.split(separator: ";").first?.split(separator: "=").last.map(String.init))
            let expected = Cookie(
                name: options.name,
                value: value,
                maxAge: options.maxAge,
                domain: options.domain,
                path: "/",
                secure: options.secure,
                httpOnly: true,
                sameSite: .lax
            )
            // The same name=value first, and the same attributes (Hummingbird keeps them in a
            // dictionary: their order differs from one `Cookie` to the next, and doesn't matter).
            func parts(_ line: String) -> (first: Substring?, attributes: Set<Substring>) {
                let parts = line.split(separator: "; ")
                return (parts.first, Set(parts.dropFirst()))
            }
            #expect(parts(line).first == parts(expected.description).first)
            #expect(parts(line).attributes == parts(expected.description).attributes)
            #expect(DefaultEdgeCookieFormat().parse(value) != nil)
            #expect(response.headers[values: .setCookie].count == 1)
        }
    }
}

@Suite struct EdgeCookieIssuerTests {
    @Test func theHashIsHMACOfTheClientIPAndTheSuffixIsRandom() {
        let issuer = EdgeCookieIssuer(secret: Array("0123456789abcdef".utf8), random: SeededRandomSource(seed: 1))
        let first = issuer.issue(clientIP: "203.0.113.9")
        let second = issuer.issue(clientIP: "203.0.113.9")
        let other = issuer.issue(clientIP: "203.0.113.10")
        #expect(DefaultEdgeCookieFormat().parse(first) != nil)
        #expect(first.prefix(64) == second.prefix(64))
        #expect(first.suffix(6) != second.suffix(6))
        #expect(first.prefix(64) != other.prefix(64))
        // HMAC-SHA256("0123456789abcdef", "203.0.113.9"), computed independently with Python's hmac module.
        #expect(first.prefix(64) == "6c12fd2b48792833d1b66bab19e823a5fc150b64d196e3985133ae5ce983bd49")
    }
}

/// Returns the given values in turn.
final class ListedRandomSource: RandomSource {
    private let values: Mutex<[UInt64]>
    init(_ values: [UInt64]) { self.values = Mutex(values) }
    func next() -> UInt64 { values.withLock { $0.removeFirst() } }
}

@Suite struct EdgeCookieSuffixTests {
    @Test("The suffix is one draw over all 62^6 suffixes, written in base 62 (A-Z a-z 0-9), lowest digit first")
    func oneDrawPerSuffix() {
        let suffixes: UInt64 = 56_800_235_584  // 62^6
        // Values the unbiased draw accepts as they are (above its rejection threshold): 2 * 62^6 + k gives k.
        let source = ListedRandomSource([2 * suffixes, 2 * suffixes + 61, 2 * suffixes + 62, 3 * suffixes - 1])
        let issuer = EdgeCookieIssuer(secret: Array("0123456789abcdef".utf8), random: source)
        let issued = (0..<4).map { _ in String(issuer.issue(clientIP: "203.0.113.9").suffix(6)) }
        #expect(issued == ["AAAAAA", "9AAAAA", "ABAAAA", "999999"])
    }
}

@Suite struct ClientIPNormalizationTests {
    @Test(arguments: [
        ("1.2.3.4", "1.2.3.4"), ("1.2.3.4:5555", "1.2.3.4"), ("::ffff:1.2.3.4", "1.2.3.4"), (" 1.2.3.4 ", "1.2.3.4"),
        ("[2001:db8::1]:443", "2001:db8::1"), ("2001:DB8:0::1", "2001:db8::1"),
    ])
    func equivalentFormsAreOneAddress(raw: String, canonical: String) {
        #expect(ClientIPSource.normalize(raw) == canonical)
    }

    @Test(arguments: ["garbage", "", "1.2.3", "unknown", String(repeating: "1", count: 100)])
    func nonAddressesAreRefused(raw: String) {
        #expect(ClientIPSource.normalize(raw) == nil)
    }
}

@Suite struct ClientIPHeaderTests {
    /// A request carrying `fields` (a name may repeat, as a proxy chain can send it).
    static func request(_ fields: [(String, String)]) -> Request {
        var headers = HTTPFields()
        for (name, value) in fields { headers.append(HTTPField(name: HTTPField.Name(name)!, value: value)) }
        return Request(
            head: HTTPRequest(method: .get, scheme: "https", authority: "www.example", path: "/", headerFields: headers),
            body: RequestBody(buffer: ByteBuffer())
        )
    }

    static let context = BasicRequestContext(
        source: ApplicationRequestContextSource(channel: EmbeddedChannel(), logger: Logger(label: "test"))
    )

    @Test(
        "The first non-empty entry of the header's fields, in canonical form",
        arguments: [
            ([("X-Forwarded-For", "203.0.113.9, 10.0.0.1")], "203.0.113.9"),
            ([("x-forwarded-for", ",, 198.51.100.3 ,10.0.0.1")], "198.51.100.3"),
            ([("X-Forwarded-For", ""), ("X-Forwarded-For", "198.51.100.2")], "198.51.100.2"),
            ([("X-Forwarded-For", ","), ("Via", "1.1 proxy"), ("X-Forwarded-For", "[2001:DB8::1]:443, 10.0.0.1")], "2001:db8::1"),
            ([("X-Forwarded-For", "garbage, 198.51.100.2")], nil),
            ([("X-Real-IP", "198.51.100.2")], nil),
        ] as [([(String, String)], String?)]
    )
    func fromHeader(fields: [(String, String)], expected: String?) {
        let request = Self.request(fields)
        #expect(ClientIPSource.header("X-Forwarded-For").clientIP(of: request, context: Self.context) == expected)
        #expect(ClientIPSource.Reader(.header("X-Forwarded-For")).clientIP(of: request, context: Self.context) == expected)
    }

    @Test("A header name that can't be one reads no address")
    func invalidName() {
        let request = Self.request([("X-Forwarded-For", "198.51.100.2")])
        #expect(ClientIPSource.header("X Forwarded For").clientIP(of: request, context: Self.context) == nil)
    }
}

@Suite struct SocketPeerTests {
    /// `EdgeRequestContext` reads the TCP peer only when asked; with `ClientIPSource.socketPeer`
    /// a new browser's EC is still the HMAC of the peer's address (here the loopback client's).
    @Test func aNewBrowsersECHashesTheTCPPeer() async throws {
        let secret = Array("0123456789abcdef0123".utf8)
        let dispatcher = PullDispatcher(kernel: try onePartnerKernel())
        let router = Router(context: EdgeRequestContext.self)
        router.add(
            middleware: PullSyncMiddleware(dispatcher: dispatcher, issuer: EdgeCookieIssuer(secret: secret))
        )
        router.get("**") { _, context in context.remoteAddress?.ipAddress ?? "none" }
        let application = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0))
        )
        try await application.test(.live) { client in
            let response = try await client.execute(uri: "/news", method: .get)
            #expect(String(buffer: response.body) == "127.0.0.1")
            let ec = try #require(ecCookie(from: response))
            #expect(ec.prefix(64) == EdgeCookieIssuer(secret: secret).issue(clientIP: "127.0.0.1").prefix(64))
        }
    }
}

extension SocketPeerTests {
    /// The peer's address is read from its bytes, not from `inet_ntop`'s text parsed again: both
    /// give the same canonical client IP (a v4-mapped IPv6 peer is its IPv4 address).
    @Test(arguments: [
        ("10.0.0.7", "10.0.0.7"), ("::1", "::1"), ("2001:db8::1", "2001:db8::1"),
        ("::ffff:1.2.3.4", "1.2.3.4"), ("2001:DB8:0:0:0:0:0:2", "2001:db8::2"),
    ])
    func peerAddressesAreCanonical(peer: String, canonical: String) throws {
        let address = try SocketAddress(ipAddress: peer, port: 443)
        let fromBytes = ClientIPSource.Reader.ipAddress(of: address)?.canonical.description
        #expect(fromBytes == canonical)
        #expect(fromBytes == ClientIPSource.normalize(try #require(address.ipAddress)))
    }

    @Test func aContextWithoutAPeerGivesNoAddress() {
        #expect(ClientIPSource.Reader.remoteAddress(of: BasicRequestContext(source: .init(channel: EmbeddedChannel(), logger: Logger(label: "t")))) == nil)
    }
}

@Suite struct BufferedSystemRandomTests {
    @Test("Draws past several refills of the buffer never repeat a word, nor leave it behind")
    func refillsWithFreshBytes() {
        let random = BufferedSystemRandom(path: "/dev/urandom")
        // 512 words a refill: 2,000 draws take four. A refill that handed out the old (zeroed)
        // buffer again, or the same bytes twice, would repeat values.
        let draws = (0..<2_000).map { _ in random.next() }
        #expect(Set(draws).count == draws.count)
        #expect(!draws.contains(0))
    }

    @Test("Without the device each draw comes from the system's generator")
    func fallsBackWithoutTheDevice() {
        let random = BufferedSystemRandom(path: "/nonexistent/pullsync-random")
        let draws = (0..<100).map { _ in random.next() }
        #expect(Set(draws).count == draws.count)
    }

    @Test("A device that ends early is not used: the draws fall back rather than repeat")
    func aShortDeviceFallsBack() throws {
        // An empty file reads as end of file at once: a refill that trusted it would hand out
        // zeros.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pullsync-empty-\(UUID())").path
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let random = BufferedSystemRandom(path: path)
        let draws = (0..<100).map { _ in random.next() }
        #expect(Set(draws).count == draws.count)
        #expect(!draws.contains(0))
    }
}

/// The middleware called directly, so a test can look between the response it returns and the
/// writing of that response's body (where a page's hand-over happens).
@Suite struct FullQueueTests {
    /// Collects what a response body writes.
    final class CollectingWriter: ResponseBodyWriter {
        var written = ByteBuffer()
        var finished = false
        func write(_ buffer: ByteBuffer) async throws { written.writeImmutableBuffer(buffer) }
        func finish(_ trailingHeaders: HTTPFields?) async throws { finished = true }
    }

    static func written(_ response: Response) async throws -> String {
        let writer = CollectingWriter()
        try await response.body.write(writer)
        #expect(writer.finished)
        return String(buffer: writer.written)
    }

    @Test("While the queue is full, a new browser's page is decided before it is written, and still gets its EC")
    func aFullQueueDecidesBeforeThePage() async throws {
        // Not running: what is queued stays queued.
        let dispatcher = PullDispatcher(kernel: try onePartnerKernel(PullSyncConfiguration(queueCapacity: 1)))
        let middleware = PullSyncMiddleware<BasicRequestContext>(
            dispatcher: dispatcher,
            issuer: EdgeCookieIssuer(secret: Array("0123456789abcdef0123".utf8)),
            clientIP: .header("X-Forwarded-For")
        )
        let context = BasicRequestContext(source: .init(channel: EmbeddedChannel(), logger: Logger(label: "test")))
        func page(from ip: String) async throws -> Response {
            let head = HTTPRequest(
                method: .get,
                scheme: "http",
                authority: "edge.test",
                path: "/news",
                headerFields: headers([("X-Forwarded-For", ip)])
            )
            return try await middleware.handle(Request(head: head, body: RequestBody(buffer: ByteBuffer())), context: context) {
                _,
                _ in Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(string: "page body")))
            }
        }

        // Room in the queue: the request is handed over once the page is written, not before.
        let first = try await page(from: "203.0.113.1")
        #expect(dispatcher.statistics.enqueued == 0)
        #expect(try await Self.written(first) == "page body")
        #expect(dispatcher.statistics.enqueued == 1)
        #expect(dispatcher.isQueueFull)

        // The queue is full: the gate drops the request before the page is written (nothing to
        // hand over after it), and the browser still gets its EC and the page as the route made it.
        let second = try await page(from: "203.0.113.2")
        #expect(dispatcher.statistics.dropped == 1)
        let ec = try #require(second.headers[.setCookie].map { String($0.dropFirst(6).prefix { $0 != ";" }) })
        #expect(DefaultEdgeCookieFormat().parse(ec) != nil)
        #expect(try await Self.written(second) == "page body")
        #expect(dispatcher.statistics.dropped == 1)
        #expect(dispatcher.statistics.enqueued == 1)
    }
}
