import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOSSL
import PullSyncTesting
import PartnerSimulator
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension AllPullSyncTestingTests {
    /// The misbehaviours a transport must survive, against a real AsyncHTTPClient. The errors asserted here are
    /// what AsyncHTTPClient 1.37 actually throws, so the transport's error mapping can rely on them.
    @Suite("PartnerServer misbehaviours")
    struct PartnerServerMisbehaviorTests {
        @Test(
            "a client that stops reading a 10 MiB body after 64 KiB stops the server early",
            arguments: Scheme.allCases
        )
        func largeBodyAbandoned(scheme: Scheme) async throws {
            try await withServer(scheme) { server in
                let size = 10 << 20
                server.script(path: "/huge", .large(byteCount: size, declareLength: false))
                let received = try await withClient { client in
                    let response = try await client.execute(pullRequest(server, "/huge"), timeout: .seconds(20))
                    var received = 0
                    for try await chunk in response.body {
                        received += chunk.readableBytes
                        if received >= 64 << 10 { break }
                    }
                    return received
                }
                #expect(received >= 64 << 10)
                // Dropping the body iterator makes AsyncHTTPClient close the connection; the count is final once the
                // server has seen that.
                try #require(await eventually { server.requestsInProgress == 0 }, "the server to see the client go")
                let written = server.bytesWritten(path: "/huge")
                // What can be written without the client consuming it is bounded by buffers, not by the body:
                // AsyncHTTPClient's read-ahead (a few reads of at most 64 KiB), the client's kernel receive buffer
                // (autotuned; under ~1.5 MiB seen on loopback), the server's pinned 256 KiB send buffer and NIO's
                // 64 KiB write high-water mark, plus TLS records. Seen: 0.2-0.6 MiB. 4 MiB is generous and still far
                // below the 10 MiB a client reading to the end would have taken.
                #expect(written >= received)
                #expect(written < 4 << 20)
            }
        }

        @Test(
            "headersThenStall fails the body read with readTimeout and the server serves the next request",
            arguments: Scheme.allCases,
            [64, nil] as [Int?]
        )
        func stall(scheme: Scheme, contentLength: Int?) async throws {
            try await withServer(scheme) { server in
                server.script(path: "/stall", .headersThenStall(contentLength: contentLength))
                server.script(path: "/ok", .uid("after-stall"))
                // AsyncHTTPClient's deadline only runs until the response head; a stalled body is cut by the read
                // (idle) timeout. The deadline is generous (the head must arrive on a busy machine); the stall
                // never ends, so only the 1 s read timeout can end the body.
                try await withClient(configure: { $0.timeout.read = .seconds(1) }) { client in
                    let response = try await client.execute(
                        pullRequest(server, "/stall"),
                        deadline: .now() + .seconds(30)
                    )
                    #expect(response.status == .ok)
                    if let contentLength {
                        #expect(response.headers.first(name: "content-length") == String(contentLength))
                    } else {
                        #expect(response.headers.first(name: "transfer-encoding") == "chunked")
                    }
                    let error = await #expect(throws: HTTPClientError.self) {
                        _ = try await response.body.collect(upTo: 1 << 20)
                    }
                    #expect(error == .readTimeout)
                    let next = try await fetch(client, pullRequest(server, "/ok"))
                    #expect(next.text == #"{"uid":"after-stall"}"#)
                }
                try #require(await eventually { server.requestsInProgress == 0 }, "the stalled connection to close")
            }
        }

        @Test("cancelling the task reading a stalled body throws CancellationError", arguments: Scheme.allCases)
        func stallCancelled(scheme: Scheme) async throws {
            try await withServer(scheme) { server in
                server.script(path: "/stall", .headersThenStall(contentLength: nil))
                try await withClient { client in
                    let response = try await client.execute(pullRequest(server, "/stall"), timeout: .seconds(20))
                    let reader = Task { try await response.body.collect(upTo: 1 << 20) }
                    try #require(await eventually { server.requestsInProgress == 1 }, "the request to be in progress")
                    reader.cancel()
                    await #expect(throws: CancellationError.self) { _ = try await reader.value }
                }
                try #require(await eventually { server.requestsInProgress == 0 }, "the stalled connection to close")
            }
        }

        @Test("a deadline passing before the response head throws deadlineExceeded", arguments: Scheme.allCases)
        func deadlineBeforeHead(scheme: Scheme) async throws {
            try await withServer(scheme) { server in
                server.script(path: "/slow", .delayed(.seconds(30), .uid("too-late")))
                server.script(path: "/ok", .uid("on-time"))
                try await withClient { client in
                    let error = await #expect(throws: HTTPClientError.self) {
                        _ = try await fetch(client, pullRequest(server, "/slow"), timeout: .milliseconds(300))
                    }
                    #expect(error == .deadlineExceeded)
                    let next = try await fetch(client, pullRequest(server, "/ok"))
                    #expect(next.text == #"{"uid":"on-time"}"#)
                }
            }
        }

        @Test("reset fails the client with ECONNRESET, not a timeout", arguments: Scheme.allCases)
        func reset(scheme: Scheme) async throws {
            try await withServer(scheme) { server in
                server.script(path: "/rst", .reset)
                server.script(path: "/ok", .uid("after-reset"))
                try await withClient { client in
                    let error = await #expect(throws: IOError.self) {
                        _ = try await fetch(client, pullRequest(server, "/rst"), timeout: .seconds(20))
                    }
                    #expect(error?.errnoCode == ECONNRESET)
                    let next = try await fetch(client, pullRequest(server, "/ok"))
                    #expect(next.text == #"{"uid":"after-reset"}"#)
                }
                #expect(server.requestCount(path: "/rst") == 1)
            }
        }

        @Test("a client trusting another CA fails the handshake; trusting the right one succeeds")
        func trust() async throws {
            try await withServer(.https) { server in
                server.script(path: "/sync", .uid("trusted"))
                let stranger = TestCertificateAuthority(commonName: "some other CA")
                // Without retries the request fails on the first handshake.
                let error = await #expect(throws: NIOSSLError.self) {
                    try await withClient(
                        trusting: stranger,
                        configure: {
                            $0.connectionPool.retryConnectionEstablishment = false
                        }
                    ) { _ = try await fetch($0, pullRequest(server, "/sync")) }
                }
                #expect(error.map(isCertificateVerifyFailure) == true)
                // With retries (the default) AsyncHTTPClient retries with backoff until `timeout.connect`, then
                // throws the last handshake error. 2 s: room for at least one handshake on a busy machine.
                let retried = await #expect(throws: NIOSSLError.self) {
                    try await withClient(
                        trusting: stranger,
                        configure: {
                            $0.timeout.connect = .seconds(2)
                        }
                    ) { _ = try await fetch($0, pullRequest(server, "/sync")) }
                }
                #expect(retried.map(isCertificateVerifyFailure) == true)
                #expect(server.requests.isEmpty)

                let fetched = try await withClient { try await fetch($0, pullRequest(server, "/sync")) }
                #expect(fetched.text == #"{"uid":"trusted"}"#)
            }
        }

        @Test("peakConcurrentRequests counts three overlapping delayed requests")
        func peakConcurrency() async throws {
            try await withServer(.http) { server in
                // Answered after an hour, so never in the test's life: the three overlap however slowly
                // they arrive, and the test ends them.
                server.script(path: "/slow", .delayed(.seconds(3600), .uid("slow")))
                try await withClient { client in
                    let requests = Task {
                        try await withThrowingTaskGroup(of: Void.self) { group in
                            for _ in 0..<3 {
                                group.addTask {
                                    _ = try await fetch(client, pullRequest(server, "/slow"), timeout: .seconds(3600))
                                }
                            }
                            try await group.waitForAll()
                        }
                    }
                    try #require(await eventually { server.requestsInProgress == 3 }, "three requests in progress")
                    #expect(server.peakConcurrentRequests == 3)
                    requests.cancel()
                    _ = await requests.result
                }
                try #require(await eventually { server.requestsInProgress == 0 }, "the abandoned requests to end")
                #expect(server.peakConcurrentRequests == 3)
                #expect(server.requestCount(path: "/slow") == 3)
            }
        }

        @Test(
            "sequential requests keep the peak at one and reuse one kept-alive connection",
            arguments: Scheme.allCases
        )
        func sequentialKeepAlive(scheme: Scheme) async throws {
            try await withServer(scheme) { server in
                server.script(path: "/sync", .uid("again"))
                try await withClient { client in
                    for _ in 0..<3 {
                        let fetched = try await fetch(client, pullRequest(server, "/sync"))
                        #expect(fetched.status == 200)
                    }
                }
                #expect(server.peakConcurrentRequests == 1)
                #expect(server.acceptedConnections == 1)
                #expect(Set(server.requests.map(\.connectionNumber)) == [0])
            }
        }

        @Test(
            "shutdown with a stalled connection open returns and closes it",
            arguments: Scheme.allCases,
            [1000, nil] as [Int?]
        )
        func shutdownWithStalledConnection(scheme: Scheme, contentLength: Int?) async throws {
            try await withServer(scheme) { server in
                server.script(path: "/stall", .headersThenStall(contentLength: contentLength))
                try await withClient { client in
                    let response = try await client.execute(pullRequest(server, "/stall"), timeout: .seconds(20))
                    let reader = Task { try await response.body.collect(upTo: 1 << 20) }
                    try #require(await eventually { server.requestsInProgress == 1 }, "the stalled request")
                    #expect(server.openConnections == 1)

                    let shutDown = await finishing { try await server.shutdown() }
                    try #require(shutDown != nil, "the shutdown hung")
                    try shutDown?.get()
                    #expect(server.openConnections == 0)
                    #expect(server.requestsInProgress == 0)
                    let error = await #expect(throws: (any Error).self) { _ = try await reader.value }
                    #expect(error.map(isEarlyEOF) == true)
                    // Idempotent.
                    try await server.shutdown()
                }
            }
        }
    }
}

/// `NIOSSLError.handshakeFailed` carrying BoringSSL's CERTIFICATE_VERIFY_FAILED.
private func isCertificateVerifyFailure(_ error: NIOSSLError) -> Bool {
    guard case .handshakeFailed(let reason) = error else { return false }
    return String(describing: reason).contains("CERTIFICATE_VERIFY_FAILED")
}

/// What AsyncHTTPClient throws when the server closes before the body's end (declared or chunked), TLS or not:
/// NIOHTTP1's parser error for an early EOF.
private func isEarlyEOF(_ error: any Error) -> Bool {
    guard let error = error as? HTTPParserError, case .invalidEOFState = error else { return false }
    return true
}
