import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import PullSyncTesting
import PartnerSimulator
import Testing

extension AllPullSyncTestingTests {
    /// What the server records about requests, and how it speaks.
    @Suite("PartnerServer recording")
    struct PartnerServerRecordingTests {
        @Test("records method, target, parsed query, headers, body and arrival", arguments: Scheme.allCases)
        func records(scheme: Scheme) async throws {
            try await withServer(scheme) { server in
                server.script(path: "/pull", .uid("u1"))
                let before = ContinuousClock.now
                try await withClient { client in
                    var request = HTTPClientRequest(
                        url: url(server, "/pull") + "?ec_id=a%20b%2Fc&flag&empty=&ec_id=second"
                    )
                    request.method = .POST
                    request.headers.add(name: "Authorization", value: "Bearer s3cret")
                    request.headers.add(name: "X-Trace", value: "t-1")
                    request.body = .bytes(ByteBuffer(string: #"{"hello":"partner"}"#))
                    _ = try await fetch(client, request)
                    _ = try await fetch(client, pullRequest(server, "/elsewhere"))
                }
                let requests = server.requests
                try #require(requests.count == 2)
                let first = requests[0]
                #expect(first.method == "POST")
                #expect(first.uri == "/pull?ec_id=a%20b%2Fc&flag&empty=&ec_id=second")
                #expect(first.path == "/pull")
                #expect(
                    first.queryItems == [
                        .init(name: "ec_id", value: "a b/c"),
                        .init(name: "flag", value: nil),
                        .init(name: "empty", value: ""),
                        .init(name: "ec_id", value: "second"),
                    ]
                )
                #expect(first.queryValue("ec_id") == "a b/c")
                #expect(first.header("authorization") == "Bearer s3cret")
                #expect(first.header("X-TRACE") == "t-1")
                #expect(first.headers.contains { $0.0.lowercased() == "host" })
                #expect(first.body == Array(#"{"hello":"partner"}"#.utf8))
                #expect(first.arrivedAt >= before)
                #expect(requests[1].arrivedAt >= first.arrivedAt)
                #expect(requests[1].path == "/elsewhere")
                #expect(requests[1].queryValue("ec_id") == "ec-123")
                #expect(server.requestCount(path: "/pull") == 1)
                #expect(server.requestCount(path: "/elsewhere") == 1)
                #expect(server.requestCount(path: "/never") == 0)
            }
        }

        @Test("HTTPS offers only HTTP/1.1, so AsyncHTTPClient speaks HTTP/1.1", arguments: Scheme.allCases)
        func speaksHTTP1(scheme: Scheme) async throws {
            try await withServer(scheme) { server in
                server.script(path: "/v", .uid("v"))
                let version = try await withClient { client in
                    let response = try await client.execute(pullRequest(server, "/v"), timeout: .seconds(20))
                    _ = try await response.body.collect(upTo: 1 << 10)
                    return response.version
                }
                #expect(version == .http1_1)
                #expect(server.baseURL == "\(scheme.rawValue)://127.0.0.1:\(server.port)")
            }
        }

        @Test("listens on IPv6 loopback with a bracketed base URL")
        func ipv6() async throws {
            let server = try await PartnerServer.start(tls: suiteCA.issue(dnsNames: ["localhost"]), host: "::1")
            do {
                server.script(path: "/six", .uid("v6"))
                #expect(server.baseURL == "https://[::1]:\(server.port)")
                // The leaf carries an IP SAN for ::1, so the literal verifies too.
                let fetched = try await withClient { try await fetch($0, HTTPClientRequest(url: server.url("/six"))) }
                #expect(fetched.text == #"{"uid":"v6"}"#)
                try await server.shutdown()
            } catch {
                try? await server.shutdown()
                throw error
            }
        }

        @Test("a request closing its connection gets Connection: close and the server closes")
        func connectionClose() async throws {
            try await withServer(.http) { server in
                server.script(path: "/once", .uid("once"))
                let fetched = try await withClient { client in
                    var request = pullRequest(server, "/once")
                    request.headers.add(name: "Connection", value: "close")
                    return try await fetch(client, request)
                }
                #expect(fetched.headers.first(name: "connection") == "close")
                try #require(await eventually { server.openConnections == 0 }, "the server to close")
            }
        }
    }
}
