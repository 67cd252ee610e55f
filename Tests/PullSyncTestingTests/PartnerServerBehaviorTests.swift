import AsyncHTTPClient
import NIOCore
import PullSyncTesting
import PartnerSimulator
import Testing

extension AllPullSyncTestingTests {
    /// Each well-formed behaviour answers what it promises, over HTTP and HTTPS.
    @Suite("PartnerServer behaviours")
    struct PartnerServerBehaviorTests {
        @Test("uid answers 200 with a JSON uid body", arguments: Scheme.allCases)
        func uid(scheme: Scheme) async throws {
            try await withServer(scheme) { server in
                server.script(path: "/sync", .uid("abc\"123"))
                let fetched = try await withClient { try await fetch($0, pullRequest(server, "/sync")) }
                #expect(fetched.status == 200)
                #expect(fetched.headers.first(name: "content-type") == "application/json")
                #expect(fetched.headers.first(name: "content-length") == String(fetched.body.count))
                #expect(fetched.text == #"{"uid":"abc\"123"}"#)
            }
        }

        @Test("json answers its status and body", arguments: Scheme.allCases)
        func json(scheme: Scheme) async throws {
            try await withServer(scheme) { server in
                server.script(path: "/j", .json(#"{"error":"quota"}"#, status: 429))
                let fetched = try await withClient { try await fetch($0, pullRequest(server, "/j")) }
                #expect(fetched.status == 429)
                #expect(fetched.headers.first(name: "content-type") == "application/json")
                #expect(fetched.text == #"{"error":"quota"}"#)
            }
        }

        @Test("respond sends status, extra headers and exact body bytes", arguments: Scheme.allCases)
        func respond(scheme: Scheme) async throws {
            try await withServer(scheme) { server in
                let body: [UInt8] = [0, 1, 2, 0xFF, 0x7B]
                server.script(path: "/raw", .respond(status: 418, headers: [("X-Partner", "teapot")], body: body))
                let fetched = try await withClient { try await fetch($0, pullRequest(server, "/raw")) }
                #expect(fetched.status == 418)
                #expect(fetched.headers.first(name: "x-partner") == "teapot")
                #expect(fetched.headers.first(name: "content-length") == "5")
                #expect(fetched.body == body)
            }
        }

        @Test("an unscripted path answers 404, and the default can be rescripted", arguments: Scheme.allCases)
        func unscripted(scheme: Scheme) async throws {
            try await withServer(scheme) { server in
                try await withClient { client in
                    let missing = try await fetch(client, pullRequest(server, "/nobody-home"))
                    #expect(missing.status == 404)
                    #expect(missing.body.isEmpty)
                    server.scriptDefault(.status(503))
                    let unavailable = try await fetch(client, pullRequest(server, "/nobody-home"))
                    #expect(unavailable.status == 503)
                }
                #expect(server.requestCount(path: "/nobody-home") == 2)
            }
        }

        @Test("delayed answers the inner behaviour after the delay", arguments: Scheme.allCases)
        func delayed(scheme: Scheme) async throws {
            try await withServer(scheme) { server in
                server.script(path: "/slow", .delayed(.milliseconds(100), .uid("late")))
                let fetched = try await withClient { try await fetch($0, pullRequest(server, "/slow")) }
                #expect(fetched.status == 200)
                #expect(fetched.text == #"{"uid":"late"}"#)
            }
        }

        @Test("held answers only once its gate opens; a request after that goes straight on", arguments: Scheme.allCases)
        func held(scheme: Scheme) async throws {
            try await withServer(scheme) { server in
                let gate = ResponseGate()
                server.script(path: "/held", .held(gate, .uid("released")))
                try await withClient { client in
                    async let first = fetch(client, pullRequest(server, "/held"))
                    try #require(await eventually { server.requestsInProgress == 1 }, "the request to arrive")
                    #expect(server.requestCount(path: "/held") == 1)
                    gate.open()
                    let answered = try await first
                    #expect(answered.status == 200)
                    #expect(answered.text == #"{"uid":"released"}"#)
                    #expect(await eventually { server.requestsInProgress == 0 })
                    let after = try await fetch(client, pullRequest(server, "/held"))
                    #expect(after.text == #"{"uid":"released"}"#)
                }
            }
        }

        @Test("redirect sends its status and Location, and a following client lands", arguments: Scheme.allCases)
        func redirect(scheme: Scheme) async throws {
            try await withServer(scheme) { server in
                server.script(path: "/old", .redirect(location: "/new"))
                server.script(path: "/moved", .redirect(status: 307, location: "/new"))
                server.script(path: "/new", .uid("moved"))
                let (found, temporary) = try await withClient { client in
                    (
                        try await fetch(client, pullRequest(server, "/old")),
                        try await fetch(client, pullRequest(server, "/moved"))
                    )
                }
                #expect(found.status == 302)
                #expect(found.headers.first(name: "location") == "/new")
                #expect(found.body.isEmpty)
                #expect(temporary.status == 307)

                let followed = try await withClient(configure: {
                    $0.redirectConfiguration = .follow(max: 3, allowCycles: false)
                }) { try await fetch($0, pullRequest(server, "/old")) }
                #expect(followed.status == 200)
                #expect(followed.text == #"{"uid":"moved"}"#)
                #expect(server.requestCount(path: "/new") == 1)
            }
        }

        @Test(
            "large streams exactly byteCount bytes of JSON-looking filler",
            arguments: Scheme.allCases,
            [true, false]
        )
        func largeComplete(scheme: Scheme, declareLength: Bool) async throws {
            try await withServer(scheme) { server in
                let size = 300_000
                server.script(path: "/big", .large(byteCount: size, declareLength: declareLength))
                let fetched = try await withClient { try await fetch($0, pullRequest(server, "/big")) }
                #expect(fetched.status == 200)
                if declareLength {
                    #expect(fetched.headers.first(name: "content-length") == String(size))
                    #expect(fetched.headers.first(name: "transfer-encoding") == nil)
                } else {
                    #expect(fetched.headers.first(name: "content-length") == nil)
                    #expect(fetched.headers.first(name: "transfer-encoding") == "chunked")
                }
                #expect(fetched.body.count == size)
                #expect(fetched.body.starts(with: Array(#"{"uid":"xxxx"#.utf8)))
                #expect(fetched.body.suffix(3) == Array(#"x"}"#.utf8)[...])
                #expect(fetched.body.dropFirst(8).dropLast(2).allSatisfy { $0 == UInt8(ascii: "x") })
                // Counted on write completion, which may trail the client's last read by a moment.
                try #require(await eventually { server.bytesWritten(path: "/big") == size }, "all bytes counted")
            }
        }

        @Test("closeWithoutResponse closes the connection without a response", arguments: Scheme.allCases)
        func closeWithoutResponse(scheme: Scheme) async throws {
            try await withServer(scheme) { server in
                server.script(path: "/hangup", .closeWithoutResponse)
                server.script(path: "/ok", .uid("still-here"))
                try await withClient { client in
                    let error = await #expect(throws: HTTPClientError.self) {
                        try await fetch(client, pullRequest(server, "/hangup"))
                    }
                    #expect(error == .remoteConnectionClosed)
                    let next = try await fetch(client, pullRequest(server, "/ok"))
                    #expect(next.text == #"{"uid":"still-here"}"#)
                }
                #expect(server.requestCount(path: "/hangup") == 1)
            }
        }
    }
}
