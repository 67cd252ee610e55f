import PartnerAdapterKit
import Foundation
import PullSync
import PullSyncTesting
import PartnerSimulator
import Testing

/// Every normal fixture again, over the real `HTTPPullTransport` (HTTPS, a test CA, the partner's
/// host name pinned to a loopback server): what arrives at the partner is the fixture's request,
/// POST bodies and signature headers included, and the answer is classified the same way.
@Suite(.serialized) struct FixtureLiveTransportTests {
    static let authority = TestCertificateAuthority(commonName: "pullsync fixture tests CA")

    @Test(arguments: FixtureCase.all().filter { $0.kind == .exemplary })
    func overTheRealTransport(_ fixtureCase: FixtureCase) async throws {
        let fixture = try fixtureCase.fixture.get()
        let expected = try #require(fixture.expectedRequest)
        let response = try #require(fixture.response)
        let url = try #require(URLComponents(string: fixture.substitutingSecrets(in: expected.url)))
        let host = try #require(url.host)
        let caFile = FileManager.default.temporaryDirectory
            .appendingPathComponent("pullsync-fixture-ca-\(UUID().uuidString).pem").path
        try Self.authority.writeCACertificate(to: caFile)
        defer { try? FileManager.default.removeItem(atPath: caFile) }

        let server = try await PartnerServer.start(tls: try Self.authority.issue(dnsNames: [host]))
        let body: [UInt8]
        if case .response(_, _, let bytes)? = fixture.transportResult { body = bytes } else { body = [] }
        server.script(
            path: url.percentEncodedPath,
            .respond(
                status: response.status ?? 200,
                headers: (response.headers ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
                body: body
            )
        )
        let transport = HTTPPullTransport(
            configuration: HTTPPullTransport.Configuration(
                allowLoopback: true,
                additionalTrustRootFiles: [caFile],
                // Generous, like the partner timeout below: hang guards for a busy machine.
                connectTimeout: .seconds(30),
                resolver: StaticHostResolver([host: [IPAddress("127.0.0.1")!]])
            )
        )
        let result: FixtureRun.Result
        do {
            result = try await FixtureRun.run(
                fixtureCase,
                fixture,
                transport: PortRedirectingTransport(base: transport, port: server.port),
                timeout: .seconds(30)
            )
        } catch {
            await transport.shutdown()
            try await server.shutdown()
            throw error
        }
        await transport.shutdown()
        try await server.shutdown()

        FixtureRun.check(result, against: fixture, name: fixtureCase.testDescription)
        let received = try #require(server.requests.first, "nothing reached the partner")
        #expect(server.requests.count == 1)
        #expect(received.method == expected.method)
        let target = url.percentEncodedPath + (url.percentEncodedQuery.map { "?" + $0 } ?? "")
        #expect(received.uri == target)
        #expect(received.header("Host") == "\(host):\(server.port)")
        for (name, value) in expected.headers {
            #expect(received.header(name) == fixture.substitutingSecrets(in: value), "\(name)")
        }
        if let body = expected.body {
            #expect(JSONValue.parse(received.body) == body)
            #expect(received.header("Content-Length") == String(received.body.count))
        } else {
            #expect(received.body.isEmpty)
        }
    }
}

/// Sends every request to the loopback server's port: the manifests name the partners' real
/// ports, and their host names resolve to loopback through the test's resolver.
struct PortRedirectingTransport: PullTransport {
    let base: any PullTransport
    let port: Int

    func send(_ request: PullRequest, limits: TransportLimits) async -> TransportResult {
        var redirected = request
        redirected.url.port = port
        return await base.send(redirected, limits: limits)
    }
}
