import Foundation
import PullSync
import PullSyncTesting
import PartnerSimulator
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension AllTransportTests {
    /// Partners that never finish answering, and partners whose TLS can't be trusted.
    @Suite("Transport: deadlines and TLS")
    struct TransportDeadlineAndTLSTests {
        /// The partner's whole-call deadlines in the stall tests, tried in turn: the request must reach the
        /// partner before the deadline for the case to say anything about a stall, and a machine busy enough
        /// (a cold test run's first seconds on 2 cores) can hold a TLS connection back for the whole first one.
        static let stallTimeouts: [Duration] = [.seconds(5), .seconds(10), .seconds(20)]
        /// The partner's whole-call deadline in the silent-handshake test (below its 7 s connect timeout).
        static let partnerTimeout = Duration.milliseconds(1500)
        /// The hang guard: generous, not a performance assertion.
        static let margin = Duration.seconds(5)
        /// The stall tests' hang guard: the stall never ends, so only the deadline can end the call,
        /// and a deadline that failed would outlast any margin. Wider than `margin` (which the silent
        /// handshake's connect timeout is set against): CI, with the whole suite beside it, saw a 5 s
        /// deadline end the call after 16.6 s.
        static let stallMargin = Duration.seconds(60)

        enum Stall: String, CaseIterable, CustomTestStringConvertible, Sendable {
            case headersThenNoBodyWithLength = "headers, then no body (Content-Length)"
            case headersThenNoBodyChunked = "headers, then no body (chunked)"
            case noHeaders = "no response head at all"

            var behavior: PartnerServer.Behavior {
                switch self {
                case .headersThenNoBodyWithLength: .headersThenStall(contentLength: 64)
                case .headersThenNoBodyChunked: .headersThenStall(contentLength: nil)
                case .noHeaders: .delayed(.seconds(3600), .uid("too-late"))  // never, in the test's life
                }
            }

            var testDescription: String { rawValue }
        }

        @Test(
            "a partner that never finishes its answer is a timeout, cut at the partner's deadline",
            arguments: Stall.allCases
        )
        func stalledPartnerTimesOut(stall: Stall) async throws {
            for timeout in Self.stallTimeouts {
                if try await stalledPartnerTimesOut(stall: stall, timeout: timeout) { return }
            }
            Issue.record("the request never reached the partner, even with a deadline of \(Self.stallTimeouts.last!)")
        }

        /// One try of the stall case with the partner's deadline `timeout`: whether the request reached the
        /// partner (if it didn't, the deadline ended the call before the stall began, and nothing was tested).
        private func stalledPartnerTimesOut(stall: Stall, timeout: Duration) async throws -> Bool {
            try await withPartnerServer { server in
                server.script(path: "/pull", stall.behavior)
                let partner = makePartner("acme", port: server.port, token: makeToken(), timeout: timeout)
                return try await withHarness(try TransportHarness(partners: [partner])) { harness in
                    let (report, elapsed) = await timed { await harness.process() }
                    let result = try harness.onlyResult(report)
                    #expect(result.outcome == .timeout)
                    #expect(result.status == nil)
                    // A hang guard: the stall never ends, so only the deadline can end the call.
                    #expect(elapsed < timeout + Self.stallMargin, "took \(elapsed)")
                    #expect(try await harness.stored().isEmpty)
                    let requests = server.requestCount(path: "/pull")
                    // No retry after a timeout.
                    #expect(requests <= 1)
                    // The abandoned connection is closed, not left hanging on the partner.
                    try #require(await eventually { server.requestsInProgress == 0 }, "the server to see the client go")
                    return requests == 1
                }
            }
        }

        @Test("a partner that accepts the connection but never answers the TLS handshake is a timeout")
        func silentHandshakeTimesOut() async throws {
            // A listening socket nobody accepts on: the kernel completes TCP handshakes into the backlog, and
            // the ClientHello is never answered.
            let listener = try SilentListener()
            defer { listener.close() }
            let partner = makePartner("acme", port: listener.port, token: makeToken(), timeout: Self.partnerTimeout)
            // A connect timeout longer than the partner's deadline plus the hang guard's margin: the deadline
            // must still end the call. (Shutting the transport down afterwards waits for the abandoned
            // connection attempt, up to the connect timeout: AsyncHTTPClient's shutdown does.)
            let harness = try TransportHarness(partners: [partner], connectTimeout: .seconds(7))
            try await withHarness(harness) { harness in
                let (report, elapsed) = await timed { await harness.process() }
                let result = try harness.onlyResult(report)
                #expect(result.outcome == .timeout)
                #expect(elapsed < Self.partnerTimeout + Self.margin, "took \(elapsed)")
                #expect(try await harness.stored().isEmpty)
            }
        }

        @Test("a certificate from an untrusted CA is a tls_error, long before the deadline")
        func untrustedCA() async throws {
            let stranger = TestCertificateAuthority(commonName: "a stranger's CA")
            try await withPartnerServer(certificate: try stranger.issue(dnsNames: [partnerHost])) { server in
                server.script(path: "/pull", .uid("must-not-be-read"))
                let partner = makePartner("acme", port: server.port, token: makeToken(), timeout: .seconds(60))
                try await withHarness(try TransportHarness(partners: [partner])) { harness in
                    let (report, elapsed) = await timed { await harness.process() }
                    let result = try harness.onlyResult(report)
                    #expect(result.outcome == .tlsError)
                    #expect(result.status == nil)
                    #expect(elapsed < .seconds(30), "took \(elapsed)")
                    // The handshake failed: no request (and no token) reached the server.
                    #expect(server.requests.isEmpty)
                    #expect(try await harness.stored().isEmpty)
                }
            }
        }

        @Test("a certificate for another name is a tls_error")
        func hostnameMismatch() async throws {
            // Issued by the trusted CA, for another name and no IP addresses.
            let certificate = try transportCA.issue(dnsNames: ["other.partner.test"], ipAddresses: [])
            try await withPartnerServer(certificate: certificate) { server in
                server.script(path: "/pull", .uid("must-not-be-read"))
                let partner = makePartner("acme", port: server.port, token: makeToken(), timeout: .seconds(60))
                try await withHarness(try TransportHarness(partners: [partner])) { harness in
                    let (report, elapsed) = await timed { await harness.process() }
                    let result = try harness.onlyResult(report)
                    #expect(result.outcome == .tlsError)
                    #expect(elapsed < .seconds(30), "took \(elapsed)")
                    #expect(server.requests.isEmpty)
                    #expect(try await harness.stored().isEmpty)
                }
            }
        }

        @Test("without the extra trust root, the test CA is not trusted")
        func noExtraTrustRoot() async throws {
            try await withPartnerServer { server in
                server.script(path: "/pull", .uid("must-not-be-read"))
                let partner = makePartner("acme", port: server.port, token: makeToken(), timeout: .seconds(10))
                try await withHarness(try TransportHarness(partners: [partner], trustRootFiles: [])) { harness in
                    let result = try harness.onlyResult(await harness.process())
                    #expect(result.outcome == .tlsError)
                    #expect(server.requests.isEmpty)
                }
            }
        }
    }
}

/// A loopback TCP socket that listens and never accepts: connections complete (into the backlog) and then
/// hear nothing.
final class SilentListener: Sendable {
    let port: Int
    private let descriptor: Int32

    init() throws {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw SilentListenerError(step: "socket") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            closeDescriptor(fd)
            throw SilentListenerError(step: "bind/listen")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else {
            closeDescriptor(fd)
            throw SilentListenerError(step: "getsockname")
        }
        descriptor = fd
        port = Int(UInt16(bigEndian: actual.sin_port))
    }

    func close() {
        closeDescriptor(descriptor)
    }
}

struct SilentListenerError: Error {
    var step: String
}

private func closeDescriptor(_ descriptor: Int32) {
    #if canImport(Glibc)
    _ = Glibc.close(descriptor)
    #else
    _ = Darwin.close(descriptor)
    #endif
}
