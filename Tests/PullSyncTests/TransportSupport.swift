import Dispatch
import Foundation
import InMemoryLogging
import Logging
import NIOCore
import NIOPosix
import PartnerAdapterKit
import PartnerSimulator
import PullSync
import PullSyncConsent
import PullSyncStorage
import PullSyncTesting
import Synchronization
import Testing

/// Every transport suite of this target, one test at a time: real sockets and TLS handshakes in parallel
/// would saturate a 2-core machine in bursts, and the timeout tests would then measure the machine.
@Suite(.serialized) enum AllTransportTests {}

/// The name partners use in these tests; the transport's resolver points it at the loopback server.
let partnerHost = "sync.partner.test"

/// One CA for the transport suites; tests that need a stranger make their own.
let transportCA = TestCertificateAuthority(commonName: "pullsync transport tests CA")

/// The suite CA's certificate as a PEM file, written once, for `additionalTrustRootFiles`.
let transportCAFile: String = {
    let path = FileManager.default.temporaryDirectory
        .appendingPathComponent("pullsync-transport-ca-\(UUID().uuidString).pem").path
    do {
        try transportCA.writeCACertificate(to: path)
    } catch {
        fatalError("cannot write the test CA to \(path): \(error)")
    }
    return path
}()

/// A fresh, distinctive bearer token.
func makeToken() -> String { "tok-\(UUID().uuidString)" }

/// `IPAddress` from a literal written in a test.
func ip(_ literal: String) -> IPAddress {
    guard let address = IPAddress(literal) else { fatalError("not an IP literal: \(literal)") }
    return address
}

/// The loopback address the partner servers listen on.
let loopbackV4 = IPAddress.v4(127, 0, 0, 1)

/// An event loop group that counts how often an event loop was asked for, forwarding to NIO's singleton.
/// A transport that never asks for an event loop never made an HTTP client do anything: no connection can
/// have been attempted.
final class CountingEventLoopGroup: EventLoopGroup {
    private let base: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    private let counter = Atomic<Int>(0)

    /// How many event loops were handed out.
    var loopsHandedOut: Int { counter.load(ordering: .relaxed) }

    func next() -> any EventLoop {
        counter.add(1, ordering: .relaxed)
        return base.next()
    }

    func any() -> any EventLoop {
        counter.add(1, ordering: .relaxed)
        return base.any()
    }

    func makeIterator() -> EventLoopIterator {
        counter.add(1, ordering: .relaxed)
        return base.makeIterator()
    }

    // The singleton is never shut down; the transport never asks, since the group is shared.
    func shutdownGracefully(queue: DispatchQueue, _ callback: @escaping @Sendable ((any Error)?) -> Void) {
        queue.async { callback(nil) }
    }
}

/// A resolver whose answer a test can change, counting the lookups.
final class ChangingResolver: HostResolver {
    private let state: Mutex<(answer: [IPAddress], lookups: Int)>

    init(_ answer: [IPAddress]) {
        state = Mutex((answer, 0))
    }

    /// Changes the answer for every name.
    func answer(_ addresses: [IPAddress]) {
        state.withLock { $0.answer = addresses }
    }

    /// How many lookups were made.
    var lookups: Int { state.withLock { $0.lookups } }

    func resolve(host: String) async throws -> [IPAddress] {
        state.withLock { state in
            state.lookups += 1
            return state.answer
        }
    }
}

/// A resolver that records every name it was asked for, then answers from a table.
final class RecordingResolver: HostResolver {
    private let table: StaticHostResolver
    private let asked = Mutex<[String]>([])

    init(_ table: [String: [IPAddress]]) {
        self.table = StaticHostResolver(table)
    }

    var names: [String] { asked.withLock { $0 } }

    func resolve(host: String) async throws -> [IPAddress] {
        asked.withLock { $0.append(host) }
        return try await table.resolve(host: host)
    }
}

/// Builds a manifest-style partner `id` at `{scheme}://{host}:{port}{path}`, sending `Authorization:
/// Bearer {token}`, with source domain `{id}.example`. The default deadline is long: a test whose
/// call must answer must not see a timeout because a busy 2-core machine held its TLS connection
/// back for seconds (it has happened, with 5 s); tests of the deadline give their own.
func makePartner(
    _ id: String,
    path: String = "/pull",
    scheme: String = "https",
    host: String = partnerHost,
    port: Int?,
    token: String,
    timeout: Duration = .seconds(30),
    query: [HTTPPullAdapter.Configuration.QueryItem]? = nil,
    headers: [HTTPPullAdapter.Configuration.QueryItem] = [],
    auth: HTTPPullAdapter.Configuration.Auth? = nil,
    allowedHosts: [String]? = nil
) -> Partner {
    let configuration = HTTPPullAdapter.Configuration(
        url: PartnerURL(scheme: scheme, host: host, port: port, path: path),
        query: query,
        headers: headers,
        auth: auth ?? .bearer(.environment("TOKEN_\(id.uppercased())"))
    )
    return Partner(
        id: id,
        sourceDomain: "\(id).example",
        policy: PartnerPolicy(
            allowedHosts: AllowedHosts(allowedHosts ?? [host]),
            timeout: timeout
        ),
        adapter: HTTPPullAdapter(configuration: configuration, token: Secret(token))
    )
}

/// A template that must parse.
func template(_ text: String) -> Template {
    do {
        return try Template(parsing: text)
    } catch {
        fatalError("bad template \(text): \(error)")
    }
}

/// The real transport and a kernel over it, with an in-memory graph, a fixed clock, and every log line of
/// both (trace level) captured.
struct TransportHarness {
    let transport: HTTPPullTransport
    let kernel: PullKernel
    let graph: InMemoryIdentityGraph
    let clock: TestWallClock
    let loops: CountingEventLoopGroup
    let kernelLogs: InMemoryLogHandler
    let transportLogs: InMemoryLogHandler

    init(
        partners: [Partner],
        resolver: any HostResolver = StaticHostResolver([partnerHost: [loopbackV4]]),
        allowLoopback: Bool = true,
        trustRootFiles: [String] = [transportCAFile],
        addressTTL: Duration = .seconds(60),
        // Generous (the product's 1 s is no test subject here): on a busy machine a loopback TLS
        // handshake can take longer, and a connect timeout reads as the partner's `timeout`.
        connectTimeout: Duration = .seconds(30),
        configuration: PullSyncConfiguration = PullSyncConfiguration(allowLoopback: true)
    ) throws {
        var kernelHandler = InMemoryLogHandler()
        kernelHandler.logLevel = .trace
        var transportHandler = InMemoryLogHandler()
        transportHandler.logLevel = .trace
        kernelLogs = kernelHandler
        transportLogs = transportHandler
        loops = CountingEventLoopGroup()
        // One test clock for the kernel and the transport's address TTL.
        let clock = TestWallClock()
        self.clock = clock
        transport = HTTPPullTransport(
            configuration: HTTPPullTransport.Configuration(
                allowLoopback: allowLoopback,
                additionalTrustRootFiles: trustRootFiles,
                connectTimeout: connectTimeout,
                addressTTL: addressTTL,
                resolver: resolver,
                now: clock.continuousNow()
            ),
            eventLoopGroup: loops,
            logger: Logger(label: "pullsync.transport.test", factory: { _ in transportHandler })
        )
        graph = InMemoryIdentityGraph()
        kernel = PullKernel(
            registry: try PartnerRegistry(partners),
            configuration: configuration,
            graph: graph,
            rateLimiter: InMemoryRateLimiter(),
            transport: transport,
            consent: IABConsentRules(),
            clock: clock,
            random: SeededRandomSource(seed: 42),
            logger: Logger(label: "pullsync.kernel.test", factory: { _ in kernelHandler })
        )
    }

    /// Processes one organic request for EC `n`, issued on this request, from a client IP that must never
    /// reach a partner.
    func process(_ n: Int = 1) async -> RequestReport {
        await kernel.process(
            OrganicRequest(
                path: "/article/1",
                edgeCookie: TestPartners.edgeCookie(n),
                ecIssuedOnThisRequest: true,
                consent: .granted,
                clientIP: clientIP
            )
        )
    }

    /// The one call of a report, failing the test when there is not exactly one.
    func onlyResult(_ report: RequestReport, sourceLocation: SourceLocation = #_sourceLocation) throws -> CallResult {
        #expect(report.results.count == 1, sourceLocation: sourceLocation)
        return try #require(report.results.first, sourceLocation: sourceLocation)
    }

    /// The UIDs stored for EC `n`, keyed by source domain (empty when the EC has none or is unknown).
    func stored(_ n: Int = 1) async throws -> [String: PartnerUID] {
        try await graph.record(ecHash: String(TestPartners.edgeCookie(n).prefix(64)))?.partners ?? [:]
    }

    /// Every captured log line of kernel and transport.
    var allLogs: [InMemoryLogHandler.Entry] { kernelLogs.entries + transportLogs.entries }

    func shutdown() async {
        await transport.shutdown()
    }
}

/// The browser IP the organic requests carry; it must never be sent.
let clientIP = "198.51.100.77"

/// Runs `body` with a started HTTPS partner server presenting `certificate` (default: the suite CA's leaf
/// for `sync.partner.test`), shutting it down afterwards.
func withPartnerServer<T>(
    certificate: IssuedCertificate? = nil,
    tls: Bool = true,
    _ body: (PartnerServer) async throws -> T
) async throws -> T {
    let chain = tls ? try certificate ?? transportCA.issue(dnsNames: [partnerHost]) : nil
    let server = try await PartnerServer.start(tls: chain)
    do {
        let result = try await body(server)
        try await server.shutdown()
        return result
    } catch {
        try? await server.shutdown()
        throw error
    }
}

/// Runs `body` with a harness, shutting the transport down afterwards.
func withHarness<T>(
    _ harness: TransportHarness,
    _ body: (TransportHarness) async throws -> T
) async throws -> T {
    do {
        let result = try await body(harness)
        await harness.shutdown()
        return result
    } catch {
        await harness.shutdown()
        throw error
    }
}


/// How long `body` took, and its value.
func timed<T>(_ body: () async throws -> T) async rethrows -> (T, Duration) {
    let start = ContinuousClock.now
    let value = try await body()
    return (value, ContinuousClock.now - start)
}

/// Everything a log entry carries, rendered as text: message, metadata (nested values included) and error.
func renderedText(of entry: InMemoryLogHandler.Entry) -> String {
    var parts = ["\(entry.message)"]
    for (key, value) in entry.metadata {
        parts.append(key)
        parts.append(renderedText(of: value))
    }
    if let error = entry.error {
        parts.append(String(describing: error))
        parts.append(String(reflecting: error))
    }
    return parts.joined(separator: "\n")
}

private func renderedText(of value: Logger.MetadataValue) -> String {
    switch value {
    case .string(let string): return string
    case .stringConvertible(let convertible): return convertible.description
    case .array(let values): return values.map(renderedText(of:)).joined(separator: "\n")
    case .dictionary(let dictionary):
        return dictionary.map { "\($0.key)\n\(renderedText(of: $0.value))" }.joined(separator: "\n")
    }
}

/// Every way a value can be printed: `description`, `debugDescription` and a reflection dump.
func everyPrintout(of value: Any) -> String {
    var dumped = ""
    dump(value, to: &dumped)
    return [String(describing: value), String(reflecting: value), dumped].joined(separator: "\n")
}
