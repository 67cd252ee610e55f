import Logging
import PartnerAdapterKit
import PullSync
import PullSyncConsent
import PullSyncKernel
import PullSyncStorage
import PullSyncTesting
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import Testing

/// Issue 19, opt-out propagation: what `OptOutService` does with the outbox, pass by pass, on the
/// injected clock: one acknowledged call per (partner, EC), retries with backoff, within the
/// partner's circuit, for a bounded time; withdrawals the store refused tried again.
@Suite struct OptOutServiceTests {
    static let optOutHost = "optout.a.partner.example"

    /// Partner `a` with an opt-out endpoint (POST, the EC in the query), `b` without one.
    static func registry(budgetPerSecond: Double? = nil) throws -> PartnerRegistry {
        var a = TestPartners.partner("a", budgetPerSecond: budgetPerSecond)
        a.policy.allowedHosts = AllowedHosts([TestPartners.host("a"), optOutHost])
        a.optOut = HTTPPullAdapter(
            configuration: HTTPPullAdapter.Configuration(
                url: PartnerURL(scheme: "https", host: optOutHost, path: "/optout"),
                method: "POST",
                query: [.init(name: "ec", value: try Template(parsing: "{ec_id}"))]
            ),
            token: nil
        )
        return try PartnerRegistry([a, TestPartners.partner("b")])
    }

    struct Setup {
        let store: MemoryStore
        let transport = ScriptedTransport(fallback: .uid("u"))
        let clock = TestWallClock()
        let kernel: PullKernel
        let service: OptOutService

        init(
            graph: (any IdentityGraph)? = nil,
            store: MemoryStore = MemoryStore(),
            delivery: OptOutDelivery = OptOutDelivery(),
            budgetPerSecond: Double? = nil
        ) throws {
            self.store = store
            kernel = PullKernel(
                registry: try OptOutServiceTests.registry(budgetPerSecond: budgetPerSecond),
                graph: graph ?? store,
                rateLimiter: store,
                transport: transport,
                consent: IABConsentRules(),
                clock: clock
            )
            let kernel = self.kernel
            service = OptOutService(
                store: store,
                kernel: { kernel },
                delivery: delivery,
                clock: clock,
                logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
            )
        }

        /// EC `n` with UIDs of both partners.
        func seed(_ n: Int) async throws {
            let ec = EdgeCookie(unchecked: TestPartners.edgeCookie(n))
            _ = try await store.createRoot(for: ec, at: clock.now())
            let writes = ["a.example", "b.example"].map {
                UIDWrite(sourceDomain: $0, value: PartnerUID(uid: "u", syncedAt: clock.now()), expected: nil)
            }
            _ = try await store.write(writes, ecHash: ec.hashString)
        }

        var optOutCalls: [PullRequest] { transport.requests.filter { $0.url.host == OptOutServiceTests.optOutHost } }
    }

    @Test("A denial withdraws the EC and its partner with an endpoint is told once, and only it")
    func toldOnce() async throws {
        let setup = try Setup()
        try await setup.seed(1)
        setup.transport.script(Self.optOutHost, .status(204))
        let ec = EdgeCookie(unchecked: TestPartners.edgeCookie(1))
        #expect(await setup.kernel.withdrawDenied(ec, issuedHere: false) == "withdrawn")
        #expect(try await setup.store.pendingOptOuts() == 1)

        let pass = await setup.service.deliverDue()
        #expect(pass.results == ["acknowledged": 1])
        #expect(setup.optOutCalls.count == 1)
        let call = try #require(setup.optOutCalls.first)
        #expect(call.method == "POST")
        #expect(call.url.path == "/optout")
        #expect(call.query.map(\.value) == [ec.value])
        #expect(try await setup.store.pendingOptOuts() == 0)
        // Later passes, a later withdrawal of the same EC: nothing more.
        setup.clock.advance(by: .seconds(3600))
        _ = await setup.kernel.withdrawDenied(ec, issuedHere: false)
        #expect(await setup.service.deliverDue().results.isEmpty)
        #expect(setup.optOutCalls.count == 1)
    }

    @Test("Unanswered and 5xx attempts are retried with doubling delays; a 4xx abandons; too old expires")
    func retries() async throws {
        let setup = try Setup(delivery: OptOutDelivery(backoff: .seconds(2), maxAge: .seconds(60)))
        try await setup.seed(1)
        try await setup.seed(2)
        setup.transport.script(Self.optOutHost, .status(503))
        _ = await setup.kernel.withdrawDenied(EdgeCookie(unchecked: TestPartners.edgeCookie(1)), issuedHere: false)
        #expect(await setup.service.deliverDue().results == ["retry": 1])
        // Not due for 2 s, then 4 s.
        setup.clock.advance(by: .seconds(1))
        #expect(await setup.service.deliverDue().results.isEmpty)
        setup.clock.advance(by: .seconds(1))
        #expect(await setup.service.deliverDue().results == ["retry": 1])
        setup.clock.advance(by: .seconds(3))
        #expect(await setup.service.deliverDue().results.isEmpty)
        setup.transport.script(Self.optOutHost, .failure(.timeout))
        setup.clock.advance(by: .seconds(1))
        #expect(await setup.service.deliverDue().results == ["retry": 1])
        setup.transport.script(Self.optOutHost, .status(200))
        setup.clock.advance(by: .seconds(8))
        #expect(await setup.service.deliverDue().results == ["acknowledged": 1])
        #expect(setup.optOutCalls.count == 4)

        // A 400: abandoned at once.
        setup.transport.script(Self.optOutHost, .status(400))
        _ = await setup.kernel.withdrawDenied(EdgeCookie(unchecked: TestPartners.edgeCookie(2)), issuedHere: false)
        #expect(await setup.service.deliverDue().results == ["failed": 1])
        setup.clock.advance(by: .seconds(3600))
        #expect(await setup.service.deliverDue().results.isEmpty)
        #expect(try await setup.store.pendingOptOuts() == 0)
    }

    @Test("A task for a partner this node knows no endpoint for is tried again, not abandoned")
    func unknownPartner() async throws {
        let setup = try Setup(delivery: OptOutDelivery(backoff: .seconds(2), maxAge: .seconds(60)))
        let ec = EdgeCookie(unchecked: TestPartners.edgeCookie(1))
        _ = try await setup.store.createRoot(for: ec, at: setup.clock.now())
        let uid = PartnerUID(uid: "u", syncedAt: setup.clock.now())
        _ = try await setup.store.write([UIDWrite(sourceDomain: "gone.example", value: uid, expected: nil)], ecHash: ec.hashString)
        // Queued by a node whose manifests had the partner (this one's don't).
        _ = try await setup.store.withdraw(ecHash: ec.hashString, at: setup.clock.now(), notifying: ["gone.example"])
        #expect(await setup.service.deliverDue().results == ["retry": 1])
        #expect(try await setup.store.pendingOptOuts() == 1)
        setup.clock.advance(by: .seconds(61))
        #expect(await setup.service.deliverDue().results == ["expired": 1])
        #expect(setup.transport.requests.isEmpty)
    }

    @Test("A task tried past its maximum age is abandoned as expired")
    func expires() async throws {
        let setup = try Setup(delivery: OptOutDelivery(backoff: .seconds(2), maxAge: .seconds(10)))
        try await setup.seed(1)
        setup.transport.script(Self.optOutHost, .status(500))
        _ = await setup.kernel.withdrawDenied(EdgeCookie(unchecked: TestPartners.edgeCookie(1)), issuedHere: false)
        #expect(await setup.service.deliverDue().results == ["retry": 1])
        setup.clock.advance(by: .seconds(11))
        #expect(await setup.service.deliverDue().results == ["expired": 1])
        #expect(try await setup.store.pendingOptOuts() == 0)
    }

    @Test("An open circuit holds the opt-out back without a call; it goes once the partner is back")
    func circuit() async throws {
        let setup = try Setup()
        try await setup.seed(1)
        // Five failed pulls open `a`'s circuit (the default policy).
        setup.transport.script(TestPartners.host("a"), .status(500))
        for n in 10..<15 {
            _ = await setup.kernel.process(
                OrganicRequest(path: "/", edgeCookie: TestPartners.edgeCookie(n), ecIssuedOnThisRequest: true, consent: .granted)
            )
        }
        setup.transport.script(Self.optOutHost, .status(200))
        _ = await setup.kernel.withdrawDenied(EdgeCookie(unchecked: TestPartners.edgeCookie(1)), issuedHere: false)
        #expect(await setup.service.deliverDue().results == ["retry": 1])
        #expect(setup.optOutCalls.isEmpty)
        // After the circuit's open period (30 s) and the retry delay: the probe is the opt-out.
        setup.clock.advance(by: .seconds(31))
        #expect(await setup.service.deliverDue().results == ["acknowledged": 1])
        #expect(setup.optOutCalls.count == 1)
    }

    @Test("The partner's budget holds opt-outs back as it does pulls")
    func budget() async throws {
        let setup = try Setup(budgetPerSecond: 1)
        try await setup.seed(1)
        try await setup.seed(2)
        setup.transport.script(Self.optOutHost, .status(200))
        for n in 1...2 {
            _ = await setup.kernel.withdrawDenied(EdgeCookie(unchecked: TestPartners.edgeCookie(n)), issuedHere: false)
        }
        #expect(await setup.service.deliverDue().results == ["acknowledged": 1, "retry": 1])
        #expect(setup.optOutCalls.count == 1)
        setup.clock.advance(by: .seconds(2))
        #expect(await setup.service.deliverDue().results == ["acknowledged": 1])
        #expect(setup.optOutCalls.count == 2)
    }

    @Test("A revocation tells the revoked partner with an endpoint")
    func revocation() async throws {
        let setup = try Setup()
        try await setup.seed(1)
        setup.transport.script(Self.optOutHost, .status(200))
        // A TC string that gives no partner a vendor consent (neither has a vendor ID): both are revoked.
        let request = OrganicRequest(
            path: "/",
            edgeCookie: TestPartners.edgeCookie(1),
            consent: .granted,
            consentStrings: ConsentStrings(tcf: "COvFyGBOvFyGBAbAAAENAPCAAOAAAAAAAAAAAEEUACCKAAA")
        )
        let report = await setup.kernel.process(request)
        #expect(report.plan.revoked.sorted() == ["a", "b"])
        #expect(await setup.service.deliverDue().results == ["acknowledged": 1])
        #expect(setup.optOutCalls.map { $0.query.first?.value } == [TestPartners.edgeCookie(1)])
    }

    @Test("A withdrawal the store refused is kept, tried again, and its opt-out sent once the store is back")
    func storeDown() async throws {
        let store = MemoryStore()
        let flaky = FlakyGraph(base: store)
        let setup = try Setup(graph: flaky, store: store)
        try await setup.seed(1)
        setup.transport.script(Self.optOutHost, .status(200))
        flaky.down.store(true, ordering: .relaxed)
        let ec = EdgeCookie(unchecked: TestPartners.edgeCookie(1))
        #expect(await setup.kernel.withdrawDenied(ec, issuedHere: false) == "error")
        #expect(setup.kernel.pendingWithdrawals.count == 1)
        // Still down: nothing happens, nothing is lost.
        #expect(await setup.service.deliverDue().withdrawals == 0)
        #expect(setup.kernel.pendingWithdrawals.count == 1)
        #expect(try await store.record(ecHash: ec.hashString)?.withdrawn == false)
        // Back: withdrawn, and the partner told, in the same pass.
        flaky.down.store(false, ordering: .relaxed)
        let pass = await setup.service.deliverDue()
        #expect(pass.withdrawals == 1)
        #expect(pass.results == ["acknowledged": 1])
        #expect(try await store.record(ecHash: ec.hashString)?.withdrawn == true)
        #expect(setup.kernel.pendingWithdrawals.count == 0)
        #expect(setup.optOutCalls.count == 1)
    }

    @Test("Delivery off: opt-outs queue and are not sent; withdrawals the store refused are still tried again")
    func deliveryOff() async throws {
        let store = MemoryStore()
        let flaky = FlakyGraph(base: store)
        let setup = try Setup(graph: flaky, store: store, delivery: OptOutDelivery(enabled: false))
        try await setup.seed(1)
        flaky.down.store(true, ordering: .relaxed)
        _ = await setup.kernel.withdrawDenied(EdgeCookie(unchecked: TestPartners.edgeCookie(1)), issuedHere: false)
        flaky.down.store(false, ordering: .relaxed)
        let pass = await setup.service.deliverDue()
        #expect(pass.withdrawals == 1)
        #expect(pass.results.isEmpty)
        #expect(setup.optOutCalls.isEmpty)
        #expect(try await store.pendingOptOuts() == 1)
    }

    @Test("Graceful shutdown mid-pass: the call in flight ends and is recorded; what was claimed but not sent is due again at once")
    func shutdownMidPass() async throws {
        let setup = try Setup(delivery: OptOutDelivery(concurrency: 1))
        try await setup.seed(1)
        try await setup.seed(2)
        let gate = TestGate()
        setup.transport.script(Self.optOutHost, ScriptedTransport.Reply.status(200).held(by: gate))
        for n in 1...2 {
            _ = await setup.kernel.withdrawDenied(EdgeCookie(unchecked: TestPartners.edgeCookie(n)), issuedHere: false)
        }
        await testGracefulShutdown { trigger in
            async let pass = setup.service.deliverDue()
            #expect(await setup.transport.started(1))
            trigger.triggerGracefulShutdown()
            gate.open()
            #expect(await pass.results == ["acknowledged": 1])
        }
        #expect(setup.optOutCalls.count == 1)
        #expect(try await setup.store.pendingOptOuts() == 1)
        let now = setup.clock.now()
        #expect(try await setup.store.claimOptOuts(at: now, limit: 10, until: now + .seconds(1)).count == 1)
    }

    @Test func gracefulShutdownEndsTheService() async throws {
        let setup = try Setup(delivery: OptOutDelivery(interval: .seconds(3600)))
        await testGracefulShutdown { trigger in
            let group = ServiceGroup(
                configuration: ServiceGroupConfiguration(
                    services: [.init(service: setup.service)],
                    logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
                )
            )
            let running = Task { try await group.run() }
            trigger.triggerGracefulShutdown()
            let ended = await finishing { try await running.value }
            if case .success? = ended {} else { Issue.record("the service did not end cleanly: \(String(describing: ended))") }
        }
    }

    @Test("Backoff doubles from the first delay up to the cap", arguments: [(1, 2), (2, 4), (3, 8), (12, 3600), (100, 3600)])
    func backoff(attempts: Int, seconds: Int64) {
        #expect(OptOutDelivery().delay(afterAttempts: attempts) == .seconds(seconds))
    }
}

/// A graph whose withdrawals fail while `down` is set (the store unreachable).
final class FlakyGraph: IdentityGraph {
    let base: MemoryStore
    let down = Atomic<Bool>(false)

    init(base: MemoryStore) { self.base = base }

    struct Down: Error {}

    func record(ecHash: String) async throws -> ECRecord? {
        if down.load(ordering: .relaxed) { throw Down() }
        return try await base.record(ecHash: ecHash)
    }
    func createRoot(for edgeCookie: EdgeCookie, at now: Timestamp, consent: ConsentSnapshot?) async throws -> ECRecord {
        try await base.createRoot(for: edgeCookie, at: now, consent: consent)
    }
    func write(_ writes: [UIDWrite], ecHash: String) async throws -> [WriteResult] {
        try await base.write(writes, ecHash: ecHash)
    }
    func withdraw(ecHash: String, at now: Timestamp, notifying: [String]) async throws -> Bool {
        if down.load(ordering: .relaxed) { throw Down() }
        return try await base.withdraw(ecHash: ecHash, at: now, notifying: notifying)
    }
    func revoke(_ sourceDomains: [String], ecHash: String, at now: Timestamp, notifying: [String]) async throws -> [String] {
        try await base.revoke(sourceDomains, ecHash: ecHash, at: now, notifying: notifying)
    }
    func markSeen(ecHash: String, at now: Timestamp, consent: ConsentSnapshot?) async throws {
        try await base.markSeen(ecHash: ecHash, at: now, consent: consent)
    }
}
