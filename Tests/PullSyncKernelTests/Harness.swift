import Foundation
import InMemoryLogging
import Logging
import MetricsTestKit
import PartnerAdapterKit
import PullSyncConsent
import PullSyncKernel
import PullSyncStorage
import PullSyncTesting
import Synchronization

/// A kernel wired to in-memory stores, a scripted transport, a test clock, captured logs and
/// test metrics. The graph, rate limiter and transport can be swapped for test doubles.
struct Harness {
    /// How the kernel reaches the in-memory graph and rate limiter.
    enum Storage: Sendable, CaseIterable, CustomStringConvertible {
        /// As one `MemoryStore`, with a store's combined steps (what every store URL opens).
        case combined
        /// As two objects, one step at a time (an embedder's own graph and limiter).
        case separate

        var description: String { self == .combined ? "one store" : "separate graph and limiter" }

        /// `combined`, unless `PULLSYNC_TEST_KERNEL_STORAGE=separate`: CI runs this suite both ways.
        static let `default`: Storage =
            ProcessInfo.processInfo.environment["PULLSYNC_TEST_KERNEL_STORAGE"] == "separate" ? .separate : .combined
    }

    let clock: TestWallClock
    let graph: InMemoryIdentityGraph
    let rateLimiter: InMemoryRateLimiter
    let transport: ScriptedTransport
    let metrics: TestMetrics
    let logs: InMemoryLogHandler
    let kernel: PullKernel

    init(
        partners: [Partner],
        configuration: PullSyncConfiguration = PullSyncConfiguration(),
        fallback: ScriptedTransport.Reply = .status(404),
        random: any RandomSource = SeededRandomSource(seed: 1),
        storage: Storage = .default,
        graph graphOverride: (any IdentityGraph)? = nil,
        rateLimiter rateLimiterOverride: (any RateLimiter)? = nil,
        wrapTransport: (ScriptedTransport) -> any PullTransport = { $0 },
        logLevel: Logger.Level = .trace
    ) throws {
        clock = TestWallClock()
        graph = InMemoryIdentityGraph()
        rateLimiter = InMemoryRateLimiter()
        transport = ScriptedTransport(fallback: fallback)
        metrics = TestMetrics()
        var handler = InMemoryLogHandler()
        handler.logLevel = logLevel
        logs = handler
        // A test double for either part means two objects.
        let store: MemoryStore? =
            storage == .combined && graphOverride == nil && rateLimiterOverride == nil
            ? MemoryStore(graph: graph, rateLimiter: rateLimiter) : nil
        kernel = PullKernel(
            registry: try PartnerRegistry(partners),
            configuration: configuration,
            graph: store ?? graphOverride ?? graph,
            rateLimiter: store ?? rateLimiterOverride ?? rateLimiter,
            transport: wrapTransport(transport),
            consent: IABConsentRules(),
            clock: clock,
            random: random,
            metricsFactory: metrics,
            logger: Logger(label: "pullsync-test", factory: { _ in handler })
        )
    }

    /// Creates the root entry of EC `n`, as if the host had issued it on an earlier request.
    func seed(_ n: Int, uids: [String: PartnerUID] = [:]) async throws {
        _ = try await graph.createRoot(for: EdgeCookie(unchecked: ec(n)), at: clock.now())
        for (partnerID, uid) in uids { graph.set(uid, sourceDomain: "\(partnerID).example", ecHash: hash(n)) }
    }

    /// The graph record of EC `n`.
    func record(_ n: Int) async throws -> ECRecord? {
        try await graph.record(ecHash: hash(n))
    }

    /// The UID stored for `partnerID` (source domain `{id}.example`) under EC `n`.
    func storedUID(_ n: Int, _ partnerID: String) async throws -> PartnerUID? {
        try await record(n)?.partners["\(partnerID).example"]
    }

    /// Calls counted in the rate limiter for `partnerID` and EC `n` in the default one-hour window.
    func rateCount(_ partnerID: String, _ n: Int) async throws -> Int {
        try await rateLimiter.count(
            key: RateLimitKey(partnerID: partnerID, ecHash: hash(n)),
            window: .seconds(3600),
            at: clock.now()
        )
    }

    /// Requests sent to `partnerID`'s host.
    func calls(_ partnerID: String) -> Int {
        transport.count(host: TestPartners.host(partnerID))
    }

    /// A counter's value with exactly these dimensions (0 when it was never created).
    func counter(_ label: String, _ dimensions: [(String, String)]) -> Int64 {
        (try? metrics.expectCounter(label, dimensions).totalValue) ?? 0
    }

    /// `pullsync_decisions_total{partner, decision}`.
    func decisions(_ partnerID: String, _ decision: String) -> Int64 {
        counter("pullsync_decisions_total", [("partner", partnerID), ("decision", decision)])
    }
}

// MARK: - ECs and requests

/// EC number `n` (well formed).
func ec(_ n: Int) -> String { TestPartners.edgeCookie(n) }

/// The hash of EC number `n`.
func hash(_ n: Int) -> String { String(ec(n).prefix(64)) }

/// The rate-limit key of `partner`'s calls for the EC hashed `ecHash` (`pull:{partner}:{ecHash}`).
func pullKey(_ partner: String, _ ecHash: String) -> RateLimitKey { RateLimitKey(partnerID: partner, ecHash: ecHash) }

/// An organic request for EC `n`.
func request(
    _ n: Int,
    issued: Bool = false,
    path: String = "/news/a",
    consent: ConsentDecision = .granted,
    consentStrings: ConsentStrings = ConsentStrings(),
    clientIP: String? = nil
) -> OrganicRequest {
    OrganicRequest(
        path: path,
        edgeCookie: ec(n),
        ecIssuedOnThisRequest: issued,
        consent: consent,
        consentStrings: consentStrings,
        clientIP: clientIP
    )
}

/// A UID learned `age` before `now`.
func uid(_ value: String, age: Duration, now: Timestamp, expiresAt: Timestamp? = nil) -> PartnerUID {
    PartnerUID(uid: value, syncedAt: now - age, expiresAt: expiresAt)
}

// MARK: - Partners

/// Test partners with these ids, each optionally adjusted.
func partners(_ ids: [String], configure: (inout Partner) -> Void = { _ in }) -> [Partner] {
    ids.map { id in
        var partner = TestPartners.partner(id)
        configure(&partner)
        return partner
    }
}

/// Test partners `p0`, `p1`, ….
func partners(count: Int, configure: (inout Partner) -> Void = { _ in }) -> [Partner] {
    partners((0..<count).map { "p\($0)" }, configure: configure)
}

/// A manifest-style partner with a custom URL, query, headers, auth and response shape.
func httpPartner(
    _ id: String,
    url: PartnerURL? = nil,
    allowedHosts: [String]? = nil,
    query: [HTTPPullAdapter.Configuration.QueryItem]? = nil,
    headers: [HTTPPullAdapter.Configuration.QueryItem] = [],
    auth: HTTPPullAdapter.Configuration.Auth? = nil,
    token: Secret? = nil,
    uidPath: [String] = ["uid"],
    notFoundStatuses: Set<Int> = [404],
    timeout: Duration = .seconds(1)
) -> Partner {
    let url = url ?? PartnerURL(scheme: "https", host: TestPartners.host(id), path: "/pull")
    let configuration = HTTPPullAdapter.Configuration(
        url: url,
        query: query,
        headers: headers,
        auth: auth ?? .bearer(.environment("TOKEN_\(id.uppercased())")),
        uidPath: uidPath,
        notFoundStatuses: notFoundStatuses
    )
    return Partner(
        id: id,
        sourceDomain: "\(id).example",
        policy: PartnerPolicy(
            allowedHosts: AllowedHosts(allowedHosts ?? [url.host]),
            timeout: timeout
        ),
        adapter: HTTPPullAdapter(configuration: configuration, token: token)
    )
}

/// Parses a template literal of a test; a parse failure is a bug in the test.
func template(_ source: String) -> Template {
    do {
        return try Template(parsing: source)
    } catch {
        fatalError("test template '\(source)' does not parse: \(error)")
    }
}

/// A query or header item.
func item(_ name: String, _ value: String) -> HTTPPullAdapter.Configuration.QueryItem {
    .init(name: name, value: template(value))
}

// MARK: - Waiting (polling is PullSyncTesting's `eventually`; ordering uses gates)

/// A dispatcher whose shutdown grace period ends only when `graceEnds` opens (never, if `nil`):
/// what a call may still do after shutdown begins depends on the test's order, not on the clock.
func makeDispatcher(_ harness: Harness, graceEnds: TestGate? = nil) -> PullDispatcher {
    let gate = graceEnds ?? TestGate()
    return PullDispatcher(kernel: harness.kernel, sleep: { (_: Duration) async -> Void in
        _ = await gate.waitUnlessCancelled()
    })
}

/// Awaits `task`, giving up after `limit` (PullSyncTesting's `finishing(within:)`): a hang guard,
/// not a timing assertion.
/// Returns whether the task finished.
func finishes(_ task: Task<Void, Never>, within limit: Duration = .seconds(300)) async -> Bool {
    await finishing(within: limit) { await task.value } != nil
}

/// A flag that can be set once, from any task.
final class Flag: Sendable {
    private let value = Mutex(false)

    /// Sets the flag; returns whether this call set it.
    func setOnce() -> Bool {
        value.withLock { value in
            defer { value = true }
            return !value
        }
    }

    var isSet: Bool { value.withLock { $0 } }
}
