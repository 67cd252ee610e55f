import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOSSL
import PullSyncTesting
import PartnerSimulator
import Testing

/// Plain HTTP or HTTPS: the behaviour tests run over both.
enum Scheme: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case http
    case https

    var testDescription: String { rawValue }
}

/// One CA for the whole suite; tests that need a stranger make their own.
let suiteCA = TestCertificateAuthority()

/// A server for `scheme` (HTTPS presents a leaf for `localhost` from ``suiteCA``), shut down after `body`.
func withServer<T>(
    _ scheme: Scheme,
    _ body: (PartnerServer) async throws -> T
) async throws -> T {
    let tls = scheme == .https ? try suiteCA.issue(dnsNames: ["localhost"]) : nil
    let server = try await PartnerServer.start(tls: tls)
    do {
        let result = try await body(server)
        try await server.shutdown()
        return result
    } catch {
        try? await server.shutdown()
        throw error
    }
}

/// An AsyncHTTPClient on the shared event loop group that trusts only `trusting` (the suite CA by default)
/// and does not follow redirects, shut down after `body`.
func withClient<T>(
    trusting ca: TestCertificateAuthority = suiteCA,
    configure: (inout HTTPClient.Configuration) -> Void = { _ in },
    _ body: (HTTPClient) async throws -> T
) async throws -> T {
    var tls = TLSConfiguration.makeClientConfiguration()
    tls.trustRoots = ca.trustRoots
    // A TLS connection AsyncHTTPClient abandons mid-body sends close_notify and, no longer reading, can wait
    // this long for the server's reply (queued behind body bytes it will never read); `shutdown()` waits for it.
    // The 5 s default only slows the suite down.
    tls.shutdownTimeout = .milliseconds(500)
    var configuration = HTTPClient.Configuration(
        tlsConfiguration: tls,
        redirectConfiguration: .disallow,
        timeout: .init(connect: .seconds(10), read: .seconds(30))
    )
    configure(&configuration)
    let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    do {
        let result = try await body(client)
        try await client.shutdown()
        return result
    } catch {
        try? await client.shutdown()
        throw error
    }
}

/// The URL of `path` on `server`, by the name its certificate carries (`localhost`).
func url(_ server: PartnerServer, _ path: String) -> String {
    server.url(path, host: "localhost")
}

/// A GET of `path` with a pull-like query and bearer token.
func pullRequest(_ server: PartnerServer, _ path: String) -> HTTPClientRequest {
    var request = HTTPClientRequest(url: url(server, path) + "?ec_id=ec-123")
    request.headers.add(name: "Authorization", value: "Bearer test-token")
    return request
}

/// A response's status, headers and whole body.
struct Fetched: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }
}

/// Sends `request` and reads the whole body (up to 64 MiB).
func fetch(
    _ client: HTTPClient,
    _ request: HTTPClientRequest,
    timeout: TimeAmount = .seconds(20)
) async throws -> Fetched {
    let response = try await client.execute(request, timeout: timeout)
    let body = try await response.body.collect(upTo: 64 << 20)
    return Fetched(status: Int(response.status.code), headers: response.headers, body: Array(body.readableBytesView))
}

/// Every suite of this target, one test case at a time: real sockets, TLS handshakes and streamed bodies in
/// parallel would saturate a 2-core machine in bursts and starve timing-sensitive tests of other targets that
/// `swift test` runs alongside.
@Suite(.serialized) enum AllPullSyncTestingTests {}
