import InMemoryLogging
import Logging
import PullSync
import PullSyncConsent
import PullSyncPostgres
import PullSyncSQLite
import PullSyncTesting
import Synchronization
import Testing

/// The kernel's guarantees, end to end, on each store.
@Suite("Kernel on every store")
struct KernelOnStoreTests {
    @Test(
        "A UID changed by a second writer between eligibility and the write is not overwritten",
        arguments: StoreKind.available
    )
    func secondWriterWins(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            let graph = opened.store
            _ = try await graph.createRoot(for: edgeCookie(1), at: t0)
            let old = uid("old", at: t0)
            _ = try await graph.write(
                [UIDWrite(sourceDomain: "a.example", value: old, expected: nil)],
                ecHash: ecHash(1)
            )
            // While the call is out, another writer (another node, or a sync route) stores a newer UID.
            let newer = uid("from-second-writer", at: t0 + .seconds(90_000))
            let transport = HookTransport(reply: ScriptedTransport.Reply.uid("from-partner").result) {
                let result = try? await graph.write(
                    [UIDWrite(sourceDomain: "a.example", value: newer, expected: old)],
                    ecHash: ecHash(1)
                )
                #expect(result == [.stored])
            }
            let clock = TestWallClock(start: t0 + .seconds(86_401))  // the old UID is stale
            let kernel = PullKernel(
                registry: try PartnerRegistry([TestPartners.partner("a")]),
                graph: graph,
                rateLimiter: opened.store,
                transport: transport,
                consent: IABConsentRules(),
                clock: clock
            )

            let report = await kernel.process(
                OrganicRequest(path: "/", edgeCookie: edgeCookie(1).value, consent: .granted)
            )

            #expect(report.plan.decision(for: "a") == .dispatch)
            #expect(report.results.map(\.write) == [.conflict])
            #expect(try await graph.record(ecHash: ecHash(1))?.partners["a.example"] == newer)
        }
    }

    @Test("An EC withdrawn while its call is out: the partner's answer stores nothing", arguments: StoreKind.available)
    func withdrawnWhileInFlight(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            let graph = opened.store
            _ = try await graph.createRoot(for: edgeCookie(1), at: t0)
            let transport = HookTransport(reply: ScriptedTransport.Reply.uid("late").result) {
                _ = try? await graph.withdraw(ecHash: ecHash(1), at: t0 + .seconds(1))
            }
            let kernel = PullKernel(
                registry: try PartnerRegistry([TestPartners.partner("a"), TestPartners.partner("b")]),
                graph: graph,
                rateLimiter: opened.store,
                transport: transport,
                consent: IABConsentRules(),
                clock: TestWallClock(start: t0)
            )

            let report = await kernel.process(
                OrganicRequest(path: "/", edgeCookie: edgeCookie(1).value, consent: .granted)
            )

            #expect(report.results.count == 2)
            #expect(report.results.allSatisfy { $0.write == .withdrawn })
            let record = try #require(try await graph.record(ecHash: ecHash(1)))
            #expect(record.withdrawn)
            #expect(record.partners.isEmpty)
        }
    }

    @Test("UIDs that arrive together are written in one round trip", arguments: StoreKind.persistent)
    func writesAreBatched(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            let graph = opened.store
            _ = try await graph.createRoot(for: edgeCookie(1), at: t0)
            // One partner answers first and its write is held up; the other two answer while it
            // is under way, so they queue behind it and go together.
            let gate = TestGate()
            let counting = CountingGraph(base: graph, holdFirstWrite: gate)
            let transport = ScriptedTransport()
            transport.script(TestPartners.host("a"), .uid("u"))
            for partner in ["b", "c"] {
                transport.script(TestPartners.host(partner), ScriptedTransport.Reply.uid("u").held(by: counting.firstWriteStarted))
            }
            var handler = InMemoryLogHandler()
            handler.logLevel = .trace
            let logs = handler
            let kernel = PullKernel(
                registry: try PartnerRegistry(["a", "b", "c"].map { TestPartners.partner($0) }),
                graph: counting,
                rateLimiter: opened.store,
                transport: transport,
                consent: IABConsentRules(),
                clock: TestWallClock(start: t0),
                logger: Logger(label: "batching", factory: { _ in logs })
            )

            async let report = kernel.process(
                OrganicRequest(path: "/", edgeCookie: edgeCookie(1).value, consent: .granted)
            )
            // The leader's write is held on the gate; the batcher says (at trace level) when each
            // later write has queued behind it.
            #expect(
                await eventually {
                    counting.batchSizes == [1]
                        && logs.entries.contains { $0.metadata["queued"] == "2" }
                }
            )
            gate.open()
            let results = await report.results

            #expect(results.map(\.write) == [.stored, .stored, .stored])
            #expect(counting.batchSizes == [1, 2])
            #expect(try await graph.record(ecHash: ecHash(1))?.partners.count == 3)
        }
    }
}

/// A transport that runs `before` (another writer acting meanwhile) and then answers `reply`.
struct HookTransport: PullTransport {
    let reply: TransportResult
    let before: @Sendable () async -> Void

    init(reply: TransportResult, before: @escaping @Sendable () async -> Void) {
        self.reply = reply
        self.before = before
    }

    func send(_ request: PullRequest, limits: TransportLimits) async -> TransportResult {
        await before()
        return reply
    }
}

/// Counts the batches written, holding the first one until the gate opens.
final class CountingGraph: IdentityGraph {
    private let base: any IdentityGraph
    private let gate: TestGate
    private let state = Mutex<[Int]>([])
    /// Opens when the first write arrives (before it is held).
    let firstWriteStarted = TestGate()

    init(base: any IdentityGraph, holdFirstWrite gate: TestGate) {
        self.base = base
        self.gate = gate
    }

    var batchSizes: [Int] { state.withLock { $0 } }

    func record(ecHash: String) async throws -> ECRecord? { try await base.record(ecHash: ecHash) }
    func createRoot(for edgeCookie: EdgeCookie, at now: Timestamp, consent: ConsentSnapshot?) async throws -> ECRecord {
        try await base.createRoot(for: edgeCookie, at: now, consent: consent)
    }
    func write(_ writes: [UIDWrite], ecHash: String) async throws -> [WriteResult] {
        let first = state.withLock { batches in
            batches.append(writes.count)
            return batches.count == 1
        }
        if first {
            firstWriteStarted.open()
            await gate.wait()
        }
        return try await base.write(writes, ecHash: ecHash)
    }
    func withdraw(ecHash: String, at now: Timestamp, notifying: [String]) async throws -> Bool {
        try await base.withdraw(ecHash: ecHash, at: now, notifying: notifying)
    }
    func revoke(_ sourceDomains: [String], ecHash: String, at now: Timestamp, notifying: [String]) async throws -> [String] {
        try await base.revoke(sourceDomains, ecHash: ecHash, at: now, notifying: notifying)
    }
    func markSeen(ecHash: String, at now: Timestamp, consent: ConsentSnapshot?) async throws {
        try await base.markSeen(ecHash: ecHash, at: now, consent: consent)
    }
}
