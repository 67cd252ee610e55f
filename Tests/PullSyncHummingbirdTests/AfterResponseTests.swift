import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTesting
import Logging
import NIOCore
import NIOEmbedded
import PullSync
@testable import PullSyncHummingbird
import PullSyncTesting
import Testing

/// `.pullSyncHTTP1()`: the hand-over once the response has been written, with the page as the
/// route made it.
@Suite struct AfterResponseTests {
    enum Server: String, CaseIterable, CustomTestStringConvertible {
        case pullSyncHTTP1, http1
        var builder: HTTPServerBuilder { self == .http1 ? .http1() : .pullSyncHTTP1() }
        var testDescription: String { rawValue }
    }

    @Test(
        "A new browser's page is handed over once its whole response has been written, on either server",
        arguments: Server.allCases
    )
    func handedOverAfterTheWholeResponse(server: Server) async throws {
        // Not running: what is handed over stays queued, for the test to count.
        let dispatcher = PullDispatcher(kernel: try onePartnerKernel())
        let router = Router()
        router.add(
            middleware: PullSyncMiddleware(
                dispatcher: dispatcher,
                issuer: EdgeCookieIssuer(secret: Array("0123456789abcdef0123".utf8)),
                clientIP: .header("X-Forwarded-For")
            )
        )
        // A page whose second half waits for the test: the response is surely not written yet.
        let firstHalfWritten = TestGate()
        let secondHalf = TestGate()
        defer { secondHalf.open() }
        router.get("/news") { _, _ in
            Response(
                status: .ok,
                body: ResponseBody { writer in
                    try await writer.write(ByteBuffer(string: "first half, "))
                    firstHalfWritten.open()
                    _ = await secondHalf.waitUnlessCancelled()
                    try await writer.write(ByteBuffer(string: "second half"))
                    try await writer.finish(nil)
                }
            )
        }
        let application = Application(
            router: router,
            server: server.builder,
            configuration: .init(address: .hostname("127.0.0.1", port: 0))
        )
        try await application.test(.live) { client in
            async let page = client.execute(
                uri: "/news",
                method: .get,
                headers: headers([("X-Forwarded-For", "203.0.113.7")])
            )
            #expect(await eventually { firstHalfWritten.isOpen })
            #expect(dispatcher.statistics.enqueued == 0, "handed over before the response was written")
            secondHalf.open()
            let response = try await page
            #expect(String(buffer: response.body) == "first half, second half")
            #expect(ecCookie(from: response).flatMap(DefaultEdgeCookieFormat().parse) != nil)
            #expect(await eventually { dispatcher.statistics.enqueued == 1 })
        }
    }

    @Test("Under .pullSyncHTTP1() the middleware leaves the body as the route made it and hands over afterwards")
    func theBodyIsNotWrapped() async throws {
        let dispatcher = PullDispatcher(kernel: try onePartnerKernel())
        let middleware = PullSyncMiddleware<BasicRequestContext>(
            dispatcher: dispatcher,
            issuer: EdgeCookieIssuer(secret: Array("0123456789abcdef0123".utf8)),
            clientIP: .header("X-Forwarded-For")
        )
        let context = BasicRequestContext(source: .init(channel: EmbeddedChannel(), logger: Logger(label: "test")))
        let head = HTTPRequest(
            method: .get,
            scheme: "http",
            authority: "edge.test",
            path: "/news",
            headerFields: headers([("X-Forwarded-For", "203.0.113.8")])
        )
        // What the server's responder binds for each request.
        let afterResponse = AfterResponse()
        let request = Request(head: head, body: RequestBody(buffer: ByteBuffer()))
        let response = try await AfterResponse.$current.withValue(afterResponse) {
            try await middleware.handle(request, context: context) { _, _ in
                Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(string: "page body")))
            }
        }
        #expect(response.headers[.setCookie]?.hasPrefix("ts-ec=") == true)
        // Writing the body hands nothing over: it is the route's own.
        #expect(try await FullQueueTests.written(response) == "page body")
        #expect(dispatcher.statistics.enqueued == 0)
        afterResponse.run()
        #expect(dispatcher.statistics.enqueued == 1)
        // Once only.
        afterResponse.run()
        #expect(dispatcher.statistics.enqueued == 1)
    }
}
