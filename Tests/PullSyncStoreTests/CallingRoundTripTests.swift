import InMemoryLogging
import Logging
import MetricsTestKit
import PullSync
import PullSyncConsent
import PullSyncStorage
import PullSyncTesting
import Testing

/// Issue 17: what a request that calls partners costs its store, on each store. A new EC's root
/// entry and its first admissions go in one round trip; a UID write gives its call's lease back.
@Suite("Store round trips of a calling request")
struct CallingRoundTripTests {
    @Test(
        "A new EC: its root entry and first admissions in one round trip, then the writes, and no lease left",
        arguments: StoreKind.available
    )
    func newEC(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            let run = try Run(opened, partners: ["a", "b"])
            run.transport.script(TestPartners.host("a"), .uid("ua"))
            run.transport.script(TestPartners.host("b"), .uid("ub"))

            let report = await run.kernel.process(run.request(1, issued: true))

            #expect(report.plan.decision(for: "a") == .dispatch)
            #expect(report.plan.decision(for: "b") == .dispatch)
            #expect(report.results.map(\.write) == [.stored, .stored])
            #expect(run.trips("create_root_admit") == 1)
            #expect(run.trips("create_root") == 0)
            #expect(run.trips("lookup") == 0)
            #expect(run.trips("admit") == 0)
            #expect((1...2).contains(run.trips("write")))
            // Every lease went back with its UID: no round trip of its own.
            #expect(run.trips("release") == 0)
            #expect(run.total == 1 + run.trips("write"))
            // Counted once each, in the combined step.
            for partner in ["a", "b"] { #expect(try await run.counted(partner, ec: 1) == 1) }
            let record = try #require(try await opened.store.record(ecHash: ecHash(1)))
            #expect(record.partners.mapValues(\.uid) == ["a.example": "ua", "b.example": "ub"])
            if opened.store.sharesLeases {
                // Another node may call again once the rate limit allows: nobody holds the pair.
                #expect(try await run.admitElsewhere(["a", "b"], ec: 1) == [.admitted, .admitted])
            }
        }
    }

    @Test(
        "An issued EC whose entry is there already: the combined step counts nothing, and the request is decided from the record",
        arguments: StoreKind.available
    )
    func entryAlreadyThere(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            _ = try await opened.store.createRoot(for: edgeCookie(1), at: t0)
            let stored = try await opened.store.write(
                [UIDWrite(sourceDomain: "a.example", value: uid("kept", at: t0), expected: nil)],
                ecHash: ecHash(1)
            )
            #expect(stored == [.stored])
            let run = try Run(opened, partners: ["a", "b"])
            run.transport.script(TestPartners.host("b"), .uid("ub"))

            let report = await run.kernel.process(run.request(1, issued: true))

            #expect(report.plan.decision(for: "a") == .skip(.fresh))
            #expect(report.plan.decision(for: "b") == .dispatch)
            #expect(run.transport.count(host: TestPartners.host("a")) == 0)
            #expect(run.trips("create_root_admit") == 1)
            #expect(run.trips("create_root") == 1)
            #expect(run.trips("admit") == 1)
            // Only the call made was counted, once.
            #expect(try await run.counted("a", ec: 1) == 0)
            #expect(try await run.counted("b", ec: 1) == 1)
            let record = try #require(try await opened.store.record(ecHash: ecHash(1)))
            #expect(record.partners.mapValues(\.uid) == ["a.example": "kept", "b.example": "ub"])
        }
    }

    @Test("An issued EC withdrawn already: nothing is counted and nobody is called", arguments: StoreKind.available)
    func withdrawnAlready(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            _ = try await opened.store.createRoot(for: edgeCookie(1), at: t0)
            _ = try await opened.store.withdraw(ecHash: ecHash(1), at: t0)
            let run = try Run(opened, partners: ["a"])
            run.transport.script(TestPartners.host("a"), .uid("ua"))

            let report = await run.kernel.process(run.request(1, issued: true))

            #expect(report.plan.requestSkip == .consent)
            #expect(report.results.isEmpty)
            #expect(run.transport.count(host: TestPartners.host("a")) == 0)
            #expect(try await run.counted("a", ec: 1) == 0)
        }
    }

    @Test("A combined step that fails: the request is decided again step by step, and the EC keeps its root entry")
    func combinedStepFails() async throws {
        // The combined step always fails (say, a lock timeout on a rate-limit row); every other step works.
        let run = try FailingStep(MemoryStore(), failing: .createRootAdmitting, partners: ["a"])
        let (store, kernel, trips) = (run.store, run.kernel, run.trips)
        run.transport.script(TestPartners.host("a"), .uid("ua"))

        let report = await kernel.process(
            OrganicRequest(path: "/", edgeCookie: edgeCookie(1).value, ecIssuedOnThisRequest: true, consent: .granted)
        )

        #expect(report.plan.decision(for: "a") == .dispatch)
        #expect(report.results.map(\.write) == [.stored])
        #expect(trips("create_root_admit") == 1)
        #expect(trips("create_root") == 1)
        #expect(trips("admit") == 1)
        #expect(try await store.record(ecHash: ecHash(1))?.partners["a.example"]?.uid == "ua")
        #expect(try await store.count(key: pullKey("a", ecHash(1)), window: .seconds(3600), at: t0) == 1)
        // Said once, as a warning naming the store's error.
        let warnings = run.warnings(saying: "root entry")
        #expect(warnings.count == 1)
        #expect(warnings.first?.metadata["error"]?.description.contains("Refused") == true)
    }

    @Test(
        "Leases go back with the request's last write, or in one round trip when its calls stored nothing",
        arguments: StoreKind.available.filter { $0 == .postgres }
    )
    func leasesGoBackOnce(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            // No UID at all: one release round trip.
            let failing = try Run(opened, partners: ["a", "b"])
            failing.transport.script(TestPartners.host("a"), .status(500))
            failing.transport.script(TestPartners.host("b"), .status(404))
            let first = await failing.kernel.process(failing.request(1, issued: true))
            #expect(first.results.count == 2)
            #expect(failing.trips("write") == 0)
            #expect(failing.trips("release") == 1)
            #expect(try await failing.admitElsewhere(["a", "b"], ec: 1) == [.admitted, .admitted])

            // One UID, one failure: whichever ends last, the leases go back exactly once, and
            // never before both calls ended.
            let mixed = try Run(opened, partners: ["a", "b"])
            mixed.transport.script(TestPartners.host("a"), .uid("ua"))
            mixed.transport.script(TestPartners.host("b"), .status(500))
            let second = await mixed.kernel.process(mixed.request(2, issued: true))
            #expect(second.results.count == 2)
            #expect(mixed.trips("write") == 1)
            #expect(mixed.trips("release") <= 1)
            #expect(try await mixed.admitElsewhere(["a", "b"], ec: 2) == [.admitted, .admitted])
        }
    }

    @Test(
        "The store's combined step: counted only for a root it created, under the limit, and a lease held elsewhere is told apart",
        arguments: StoreKind.available
    )
    func combinedStep(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            let store = try #require(opened.store as? any CombinedStore)
            let once = RateLimitPolicy(calls: 1, window: .seconds(60))
            let used = RateLimitRequest(key: pullKey("a", ecHash(1)), policy: once)
            let free = RateLimitRequest(key: pullKey("b", ecHash(1)), policy: once)
            _ = try await store.acquire([used], at: t0)
            let lease = store.sharesLeases ? CallLease(holder: "node-1", expiresAt: t0 + .seconds(10)) : nil

            let first = try await store.createRoot(
                for: edgeCookie(1), at: t0, consent: nil, admitting: [used, free], lease: lease
            )
            #expect(first.record.ecHash == ecHash(1))
            #expect(first.record.partners.isEmpty)
            #expect(first.admissions == [.rateLimited, .admitted])

            // There now: nothing counted, whatever is asked.
            let again = RateLimitRequest(key: pullKey("c", ecHash(1)), policy: once)
            let second = try await store.createRoot(
                for: edgeCookie(1), at: t0, consent: nil, admitting: [again], lease: lease
            )
            #expect(second.admissions == nil)
            #expect(try await store.count(key: again.key, window: once.window, at: t0) == 0)

            guard let lease else { return }
            // b's lease is node-1's: another holder is refused for it, not for the limit.
            let other = RateLimitRequest(key: free.key, policy: RateLimitPolicy(calls: 5, window: .seconds(60)))
            let elsewhere = CallLease(holder: "node-2", expiresAt: t0 + .seconds(10))
            #expect(try await store.admit([other], lease: elsewhere, at: t0) == [.leased])
            // A write gives back only its own holder's leases.
            let write = UIDWrite(sourceDomain: "b.example", value: uid("ub", at: t0), expected: nil)
            #expect(try await store.write([write], ecHash: ecHash(1), releasing: [free.key], holder: "node-2") == [.stored])
            #expect(try await store.admit([other], lease: elsewhere, at: t0) == [.leased])
            let rewrite = UIDWrite(sourceDomain: "b.example", value: uid("ub2", at: t0), expected: uid("ub", at: t0))
            #expect(try await store.write([rewrite], ecHash: ecHash(1), releasing: [free.key], holder: lease.holder) == [.stored])
            #expect(try await store.admit([other], lease: elsewhere, at: t0) == [.admitted])
        }
    }
}

/// A known EC: its record read and its due partners' calls counted in one round trip.
@Suite("Store round trips of a known EC's calling request")
struct KnownECRoundTripTests {
    /// EC 1, known, with the snapshot of the requests below (so no `seen` write), and UIDs for
    /// partners `a` (fresh), `b` (past its TTL) and `d` (past its own expiry); `c` has none.
    static func seed(_ store: any PullSyncStore) async throws {
        _ = try await store.createRoot(for: edgeCookie(1), at: t0, consent: ConsentSnapshot(ConsentStrings(), seenAt: t0))
        let day = Duration.seconds(86_400)
        let written = try await store.write(
            [
                UIDWrite(sourceDomain: "a.example", value: uid("ua", at: t0 - .seconds(60)), expected: nil),
                UIDWrite(sourceDomain: "b.example", value: uid("ub", at: t0 - day - .seconds(1)), expected: nil),
                UIDWrite(sourceDomain: "d.example", value: uid("ud", at: t0 - .seconds(60), expires: t0), expected: nil),
            ],
            ecHash: ecHash(1)
        )
        #expect(written == [.stored, .stored, .stored])
    }

    @Test(
        "The due partners (past their TTL, past their expiry, or without a UID) are counted with the lookup; the fresh one is not",
        arguments: StoreKind.available
    )
    func dueCountedWithTheLookup(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            try await Self.seed(opened.store)
            let run = try Run(opened, partners: ["a", "b", "c", "d"])
            for partner in ["b", "c", "d"] { run.transport.script(TestPartners.host(partner), .uid("new-\(partner)")) }

            let report = await run.kernel.process(run.request(1, issued: false))

            #expect(report.plan.decision(for: "a") == .skip(.fresh))
            for partner in ["b", "c", "d"] { #expect(report.plan.decision(for: partner) == .dispatch) }
            #expect(report.results.map(\.write) == [.stored, .stored, .stored])
            #expect(run.trips("lookup_admit") == 1)
            #expect(run.trips("lookup") == 0)
            #expect(run.trips("admit") == 0)
            #expect(run.trips("uncount") == 0)
            #expect(run.trips("seen") == 0)
            #expect((1...3).contains(run.trips("write")))
            #expect(run.total == 1 + run.trips("write"))
            #expect(try await run.counted("a", ec: 1) == 0)
            for partner in ["b", "c", "d"] { #expect(try await run.counted(partner, ec: 1) == 1) }
            if opened.store.sharesLeases {
                #expect(try await run.admitElsewhere(["b", "c", "d"], ec: 1) == [.admitted, .admitted, .admitted])
            }
        }
    }

    @Test("A per-request cap: the step counts only the first calls up to it, the rest are deferred", arguments: StoreKind.available)
    func capCountsOnlyTheFirst(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            try await Self.seed(opened.store)
            let run = try Run(
                opened,
                partners: ["a", "b", "c", "d"].map { TestPartners.partner($0) },
                configuration: PullSyncConfiguration(maxCallsPerRequest: 2)
            )
            for partner in ["b", "c", "d"] { run.transport.script(TestPartners.host(partner), .uid("new-\(partner)")) }

            let report = await run.kernel.process(run.request(1, issued: false))

            let called = ["b", "c", "d"].filter { report.plan.decision(for: $0) == .dispatch }
            let deferred = ["b", "c", "d"].filter { report.plan.decision(for: $0) == .skip(.deferred) }
            #expect(called.count == 2)
            #expect(deferred.count == 1)
            #expect(run.trips("lookup_admit") == 1)
            #expect(run.trips("admit") == 0)
            #expect(run.trips("uncount") == 0)
            // Exactly the calls made were counted.
            for partner in ["a", "b", "c", "d"] {
                #expect(try await run.counted(partner, ec: 1) == (called.contains(partner) ? 1 : 0))
            }
        }
    }

    @Test(
        "A call the step counted but the kernel then refuses (a URL off its allow-list) is taken back, lease and count",
        arguments: StoreKind.available
    )
    func refusedAfterTheStepIsTakenBack(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            try await Self.seed(opened.store)
            var offList = TestPartners.partner("c")
            offList.policy.allowedHosts = AllowedHosts(["elsewhere.example"])
            let run = try Run(opened, partners: [TestPartners.partner("b"), offList])
            run.transport.script(TestPartners.host("b"), .uid("new-b"))

            let report = await run.kernel.process(run.request(1, issued: false))

            #expect(report.plan.decision(for: "b") == .dispatch)
            #expect(report.plan.decision(for: "c") == .skip(.badURL))
            #expect(run.transport.count(host: TestPartners.host("c")) == 0)
            #expect(run.trips("lookup_admit") == 1)
            #expect(run.trips("uncount") == 1)
            #expect(try await run.counted("b", ec: 1) == 1)
            #expect(try await run.counted("c", ec: 1) == 0)
            if opened.store.sharesLeases {
                #expect(try await run.admitElsewhere(["c"], ec: 1) == [.admitted])
            }
        }
    }

    @Test(
        "A partner without room to spare (a small in-flight cap) is not offered to the step: it is counted as before",
        arguments: StoreKind.available
    )
    func partnerWithoutRoomCountedAsBefore(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            try await Self.seed(opened.store)
            // An in-flight cap of 2 leaves no room beyond the call's own place and the margin.
            let run = try Run(
                opened,
                partners: ["b", "c"].map { TestPartners.partner($0) },
                configuration: PullSyncConfiguration(maxInFlightPerPartner: 2)
            )
            for partner in ["b", "c"] { run.transport.script(TestPartners.host(partner), .uid("new-\(partner)")) }

            let report = await run.kernel.process(run.request(1, issued: false))

            for partner in ["b", "c"] { #expect(report.plan.decision(for: partner) == .dispatch) }
            #expect(run.trips("lookup_admit") == 0)
            #expect(run.trips("lookup") == 1)
            #expect(run.trips("admit") == 1)
            for partner in ["b", "c"] { #expect(try await run.counted(partner, ec: 1) == 1) }
        }
    }

    @Test("A step that fails: the request is decided step by step, as if there were no step, and said once")
    func failedStepGoesStepByStep() async throws {
        let base = MemoryStore()
        try await Self.seed(base)
        let run = try FailingStep(base, failing: .recordAdmittingDue, partners: ["a", "b", "c"])
        let (kernel, trips) = (run.kernel, run.trips)
        for partner in ["b", "c"] { run.transport.script(TestPartners.host(partner), .uid("new-\(partner)")) }

        let report = await kernel.process(OrganicRequest(path: "/", edgeCookie: edgeCookie(1).value, consent: .granted))

        #expect(report.plan.decision(for: "a") == .skip(.fresh))
        #expect(report.plan.decision(for: "b") == .dispatch)
        #expect(report.plan.decision(for: "c") == .dispatch)
        #expect(report.results.map(\.write) == [.stored, .stored])
        #expect(trips("lookup_admit") == 1)
        #expect(trips("lookup") == 1)
        #expect(trips("admit") == 1)
        for partner in ["a", "b", "c"] {
            let counted = try await base.count(key: pullKey(partner, ecHash(1)), window: .seconds(3600), at: t0)
            #expect(counted == (partner == "a" ? 0 : 1))
        }
        let warnings = run.warnings(saying: "known EC")
        #expect(warnings.count == 1)
        #expect(warnings.first?.metadata["error"]?.description.contains("Refused") == true)
    }

    @Test("The store's step: due as PartnerUID.isFresh says, in order, up to the limit", arguments: StoreKind.available)
    func storeStep(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            let store = try #require(opened.store as? any CombinedStore)
            try await Self.seed(opened.store)
            let hour = RateLimitPolicy(calls: 1, window: .seconds(3600))
            func call(_ partner: String, ttl: Duration = .seconds(86_400)) -> DueCall {
                DueCall(
                    sourceDomain: "\(partner).example",
                    ttl: ttl,
                    timeout: .seconds(["c": 9, "e": 20][partner] ?? 1),
                    request: RateLimitRequest(key: pullKey(partner, ecHash(1)), policy: hour)
                )
            }
            // d's rate limit is used up already; e has no UID and comes after the limit.
            _ = try await store.acquire([call("d").request], at: t0)
            let lease = store.sharesLeases ? DueLease(holder: "node-1", margin: .seconds(30)) : nil
            let calls = [call("a"), call("b"), call("d"), call("c"), call("e")]

            let step = try await store.record(ecHash: ecHash(1), admittingDue: calls, limit: 3, lease: lease, at: t0)

            #expect(step.record?.partners.keys.sorted() == ["a.example", "b.example", "d.example"])
            #expect(step.admissions == [nil, .admitted, .rateLimited, .admitted, nil])
            #expect(try await store.count(key: pullKey("a", ecHash(1)), window: hour.window, at: t0) == 0)
            #expect(try await store.count(key: pullKey("e", ecHash(1)), window: hour.window, at: t0) == 0)
            // a's UID, learned a minute ago, is due at a 30 s TTL.
            let shortTTL = try await store.record(
                ecHash: ecHash(1), admittingDue: [call("a", ttl: .seconds(30))], limit: 3, lease: lease, at: t0
            )
            #expect(shortTTL.admissions == [.admitted])

            // Taken back: as if never counted, and (shared leases) free for another node.
            try await store.uncount([pullKey("b", ecHash(1))], at: t0, holder: lease?.holder)
            #expect(try await store.count(key: pullKey("b", ecHash(1)), window: hour.window, at: t0) == 0)
            #expect(try await store.count(key: pullKey("c", ecHash(1)), window: hour.window, at: t0) == 1)
            if store.sharesLeases {
                let elsewhere = CallLease(holder: "node-2", expiresAt: t0 + .seconds(10))
                let five = RateLimitPolicy(calls: 5, window: .seconds(60))
                let requests = ["b", "c"].map { RateLimitRequest(key: pullKey($0, ecHash(1)), policy: five) }
                #expect(try await store.admit(requests, lease: elsewhere, at: t0) == [.admitted, .leased])
                // Leased as one batch, for the longest call tried (c's 9 s, not e's 20 s: e was
                // not tried) plus the 30 s margin.
                let c = [requests[1]]
                #expect(try await store.admit(c, lease: elsewhere, at: t0 + .milliseconds(38_500)) == [.leased])
                #expect(try await store.admit(c, lease: elsewhere, at: t0 + .milliseconds(39_500)) == [.admitted])
            }

            // Unknown and withdrawn ECs: the record as it is, nothing counted.
            let unknown = try await store.record(ecHash: ecHash(2), admittingDue: [call("a")], limit: 4, lease: lease, at: t0)
            #expect(unknown.record == nil)
            #expect(unknown.admissions == [nil])
            _ = try await store.createRoot(for: edgeCookie(3), at: t0)
            _ = try await store.withdraw(ecHash: ecHash(3), at: t0)
            let gone = DueCall(
                sourceDomain: "a.example",
                ttl: .seconds(60),
                timeout: .seconds(1),
                request: RateLimitRequest(key: pullKey("a", ecHash(3)), policy: hour)
            )
            let withdrawn = try await store.record(ecHash: ecHash(3), admittingDue: [gone], limit: 4, lease: lease, at: t0)
            #expect(withdrawn.record?.withdrawn == true)
            #expect(withdrawn.admissions == [nil])
            #expect(try await store.count(key: gone.request.key, window: hour.window, at: t0) == 0)
        }
    }
}

/// A kernel on an opened store, with its metrics.
private struct Run {
    let store: any PullSyncStore
    let kernel: PullKernel
    let transport = ScriptedTransport()
    let metrics = TestMetrics()

    init(_ opened: OpenedStore, partners: [String]) throws {
        try self.init(opened, partners: partners.map { TestPartners.partner($0) })
    }

    init(
        _ opened: OpenedStore,
        partners: [Partner],
        configuration: PullSyncConfiguration = PullSyncConfiguration()
    ) throws {
        store = opened.store
        kernel = PullKernel(
            registry: try PartnerRegistry(partners),
            configuration: configuration,
            graph: opened.store,
            rateLimiter: opened.store,
            transport: transport,
            consent: IABConsentRules(),
            clock: TestWallClock(start: t0),
            metricsFactory: metrics
        )
    }

    func request(_ n: Int, issued: Bool) -> OrganicRequest {
        OrganicRequest(path: "/", edgeCookie: edgeCookie(n).value, ecIssuedOnThisRequest: issued, consent: .granted)
    }

    /// `pullsync_store_round_trips_total{operation}`.
    func trips(_ operation: String) -> Int64 {
        (try? metrics.expectCounter("pullsync_store_round_trips_total", [("operation", operation)]).totalValue) ?? 0
    }

    /// Every round trip, whatever its operation.
    var total: Int64 {
        [
            "lookup", "lookup_admit", "create_root", "create_root_admit", "admit", "uncount", "budget", "write",
            "release", "seen", "revoke",
        ]
            .map(trips).reduce(0, +)
    }

    /// Calls counted for `partner` and EC `ec` in the default hour-long window.
    func counted(_ partner: String, ec: Int) async throws -> Int {
        try await store.count(key: pullKey(partner, ecHash(ec)), window: .seconds(3600), at: t0)
    }

    /// What another node's admission of the same pairs gets (a lease still held says `leased`).
    func admitElsewhere(_ partners: [String], ec: Int) async throws -> [LeasedAdmission] {
        let requests = partners.map { RateLimitRequest(key: pullKey($0, ecHash(ec)), policy: RateLimitPolicy()) }
        return try await store.admit(requests, lease: CallLease(holder: "elsewhere", expiresAt: t0 + .seconds(60)), at: t0)
    }
}

/// A kernel on a `MemoryStore` one of whose steps always fails, with its metrics and logs.
private struct FailingStep {
    let store: InterceptingStore
    let kernel: PullKernel
    let transport = ScriptedTransport()
    let metrics = TestMetrics()
    let logs = InMemoryLogHandler()

    init(_ base: MemoryStore, failing failed: InterceptingStore.Step, partners: [String]) throws {
        store = InterceptingStore(base) { step in
            if step == failed { throw Refused() }
        }
        let logs = logs
        kernel = PullKernel(
            registry: try PartnerRegistry(partners.map { TestPartners.partner($0) }),
            graph: store,
            rateLimiter: store,
            transport: transport,
            consent: IABConsentRules(),
            clock: TestWallClock(start: t0),
            metricsFactory: metrics,
            logger: Logger(label: "failing-step", factory: { _ in logs })
        )
    }

    /// `pullsync_store_round_trips_total{operation}`.
    func trips(_ operation: String) -> Int64 {
        (try? metrics.expectCounter("pullsync_store_round_trips_total", [("operation", operation)]).totalValue) ?? 0
    }

    /// The warnings logged whose message says `text`.
    func warnings(saying text: String) -> [InMemoryLogHandler.Entry] {
        logs.entries.filter { $0.level == .warning && $0.message.description.contains(text) }
    }
}

/// The error of a combined step that fails.
private struct Refused: Error {}
