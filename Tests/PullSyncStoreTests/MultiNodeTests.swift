import Logging
import PartnerAdapterKit
import PartnerSimulator
import PullSync
import PullSyncConsent
import PullSyncPostgres
import PullSyncStorage
import PullSyncTesting
import ServiceLifecycle
import Synchronization
import Testing

/// Several edge nodes on one PostgreSQL: the kernel's guarantees hold across them.
@Suite("Several nodes on one PostgreSQL", .enabled(if: TestPostgres.isAvailable), .serialized)
struct MultiNodeTests {
    /// A partner on the loopback partner server, over plain HTTP (allowed for loopback in tests).
    static func partner(port: Int, calls: Int) -> Partner {
        let configuration = HTTPPullAdapter.Configuration(
            url: PartnerURL(scheme: "http", host: "127.0.0.1", port: port, path: "/pull"),
            auth: .none
        )
        return Partner(
            id: "hot",
            sourceDomain: "hot.example",
            policy: PartnerPolicy(
                allowedHosts: AllowedHosts(["127.0.0.1"]),
                rateLimit: RateLimitPolicy(calls: calls, window: .seconds(3600)),
                timeout: .seconds(5)
            ),
            adapter: HTTPPullAdapter(configuration: configuration, token: nil)
        )
    }

    @Test("Three dispatchers, 200 organic requests for one EC, a limit of 10/hour: at most 10 calls, never two at once")
    func limitAndLeaseHoldAcrossNodes() async throws {
        let server = try await PartnerServer.start()
        // No UID in the answer: the partner stays eligible, so only the limit and the lease stop calls.
        server.script(path: "/pull", .delayed(.milliseconds(40), .status(404)))
        let url = try await freshURL(.postgres)
        let partner = Self.partner(port: server.port, calls: 10)
        var logger = Logger(label: "multi-node")
        logger.logLevel = .warning

        let nodes = try await (0..<3).asyncMap { _ in
            try await Node(url: url, partner: partner, logger: logger)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for node in nodes { node.start(in: &group) }
            _ = try await nodes[0].store.createRoot(for: edgeCookie(1), at: SystemWallClock().now())
            for n in 0..<200 {
                let accepted = nodes[n % 3].dispatcher.submit(
                    OrganicRequest(path: "/article/\(n)", edgeCookie: edgeCookie(1).value, consent: .granted)
                )
                #expect(accepted == .enqueued)
                // Page views arriving over time (a load shape, not an ordering): the checks below hold
                // however they interleave with the 40 ms calls.
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(await eventually { nodes.allSatisfy { $0.dispatcher.statistics.processed == $0.submitted } })
            for node in nodes { node.dispatcher.beginShutdown() }
            for node in nodes { await node.transport.shutdown() }
            group.cancelAll()
        }

        let calls = server.requestCount(path: "/pull")
        #expect(calls <= 10, "the partner's limit held across the three nodes")
        #expect(calls >= 2, "the scenario reached the partner more than once (control)")
        #expect(server.peakConcurrentRequests == 1, "no two calls for the EC at once")
        let processed = nodes.map { $0.dispatcher.statistics.processed }.reduce(0, +)
        #expect(processed == 200)
        let check = try await PostgresStore.open(PostgresStoreURL(parsing: url), operationTimeout: busyMachineTimeout)
        let counted = try await check.whileRunning {
            try await check.count(
                key: pullKey("hot", ecHash(1)),
                window: .seconds(3600),
                at: SystemWallClock().now()
            )
        }
        #expect(counted == calls, "every call was counted once, and nothing else")
        try await server.shutdown()
    }

    @Test("Two nodes: a lease held by one makes the other skip the pair as in flight until it is released")
    func leasesAcrossStores() async throws {
        let url = try await freshURL(.postgres)
        let first = try await PostgresStore.open(PostgresStoreURL(parsing: url), operationTimeout: busyMachineTimeout)
        let second = try await PostgresStore.open(PostgresStoreURL(parsing: url), operationTimeout: busyMachineTimeout)
        let requests = [RateLimitRequest(key: pullKey("a", "1"), policy: RateLimitPolicy(calls: 5))]
        try await first.whileRunning {
            try await second.whileRunning {
                let lease = CallLease(holder: "node-1", expiresAt: t0 + .seconds(30))
                #expect(try await first.admit(requests, lease: lease, at: t0) == [.admitted])
                let other = CallLease(holder: "node-2", expiresAt: t0 + .seconds(31))
                #expect(try await second.admit(requests, lease: other, at: t0 + .seconds(1)) == [.leased])
                // Releasing someone else's lease does nothing.
                try await second.releaseLeases([pullKey("a", "1")], holder: "node-2")
                #expect(try await second.admit(requests, lease: other, at: t0 + .seconds(2)) == [.leased])
                try await first.releaseLeases([pullKey("a", "1")], holder: "node-1")
                #expect(try await second.admit(requests, lease: other, at: t0 + .seconds(3)) == [.admitted])
                // A lease lapses on its own (a node that died mid-call).
                let third = CallLease(holder: "node-3", expiresAt: t0 + .seconds(40))
                #expect(try await first.admit(requests, lease: third, at: t0 + .seconds(30)) == [.leased])
                #expect(try await first.admit(requests, lease: third, at: t0 + .seconds(31)) == [.admitted])
                // A refused count takes no lease: 3 of 5 used, limit reached at 5.
                let fourth = CallLease(holder: "node-4", expiresAt: t0 + .seconds(100))
                try await first.releaseLeases([pullKey("a", "1")], holder: "node-3")
                #expect(try await first.admit(requests, lease: fourth, at: t0 + .seconds(41)) == [.admitted])
                try await first.releaseLeases([pullKey("a", "1")], holder: "node-4")
                #expect(try await first.admit(requests, lease: fourth, at: t0 + .seconds(42)) == [.admitted])
                #expect(try await first.admit(requests, lease: other, at: t0 + .seconds(43)) == [.leased])
                try await first.releaseLeases([pullKey("a", "1")], holder: "node-4")
                #expect(try await second.admit(requests, lease: other, at: t0 + .seconds(44)) == [.rateLimited])
                #expect(try await first.admit(requests, lease: fourth, at: t0 + .seconds(45)) == [.rateLimited])
            }
        }
    }
}

/// One edge node on a shared PostgreSQL: its own store connection pool, transport, kernel and
/// dispatcher.
struct Node {
    let store: PostgresStore
    let transport: HTTPPullTransport
    let dispatcher: PullDispatcher
    let services: [any Service]

    init(url: String, partner: Partner, logger: Logger) async throws {
        store = try await PostgresStore.open(PostgresStoreURL(parsing: url), operationTimeout: busyMachineTimeout, logger: logger)
        let opened = store
        transport = HTTPPullTransport(configuration: HTTPPullTransport.Configuration(allowLoopback: true))
        let kernel = PullKernel(
            registry: try PartnerRegistry([partner]),
            configuration: PullSyncConfiguration(allowLoopback: true),
            graph: opened,
            rateLimiter: opened,
            transport: transport,
            consent: IABConsentRules(),
            clock: SystemWallClock(),
            logger: logger
        )
        dispatcher = PullDispatcher(kernel: kernel)
        services = [opened]
    }

    var submitted: Int { dispatcher.statistics.enqueued }

    func start(in group: inout ThrowingTaskGroup<Void, any Error>) {
        for service in services { group.addTask { try await service.run() } }
        group.addTask { await dispatcher.run() }
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
