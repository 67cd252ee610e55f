import PullSyncKernel
import PullSyncTesting
import Synchronization
import Testing

/// Withdrawal: a request whose consent is now denied (or the admin API) marks the EC withdrawn;
/// pulls in flight for it store nothing, and later requests with it call no one.
@Suite("Withdrawal")
struct WithdrawalTests {
    @Test(
        "A call in flight when consent is withdrawn answers with a UID afterwards, and nothing is stored",
        arguments: [true, false]  // false: the control, where the same answers are stored
    )
    func inFlightCallStoresNothing(withdraw: Bool) async throws {
        let gate = TestGate()
        let started = Box(0)
        let harness = try Harness(partners: partners(["a", "b"])) { scripted in
            HookTransport(base: scripted) { _ in
                started.update { $0 += 1 }
                await gate.wait()
            }
        }
        harness.transport.script(TestPartners.host("a"), .uid("uid-a"))
        harness.transport.script(TestPartners.host("b"), .uid("uid-b"))
        try await harness.seed(1)
        let dispatcher = PullDispatcher(kernel: harness.kernel)
        let running = Task { await dispatcher.run() }

        #expect(dispatcher.submit(request(1)) == .enqueued)
        #expect(await eventually { started.value == 2 })  // both calls are out, unanswered
        if withdraw {
            #expect(dispatcher.submit(request(1, consent: .denied)) == .skipped(.consent))
            // Counted last (after the store and the metric): the withdrawal is wholly done.
            #expect(await eventually { dispatcher.statistics.withdrawals["withdrawn"] == 1 })
            #expect(try await harness.record(1)?.withdrawn == true)
        }
        gate.open()  // the partners answer now, each with a UID
        #expect(await eventually { dispatcher.statistics.processed == 1 })

        #expect(dispatcher.statistics.outcomes["uid"] == 2)
        let record = try #require(try await harness.record(1))
        if withdraw {
            #expect(dispatcher.statistics.stored == 0)
            #expect(record.partners.isEmpty)
            #expect(harness.counter("pullsync_writes_total", [("partner", "a"), ("result", "withdrawn")]) == 1)
            #expect(harness.counter("pullsync_writes_total", [("partner", "b"), ("result", "withdrawn")]) == 1)
            #expect(harness.counter("pullsync_withdrawals_total", [("result", "withdrawn")]) == 1)
        } else {
            #expect(dispatcher.statistics.stored == 2)
            #expect(record.partners.mapValues(\.uid) == ["a.example": "uid-a", "b.example": "uid-b"])
        }

        // Later requests with that EC: none when withdrawn (even with consent granted again, and
        // past every TTL and rate-limit window), both partners again in the control.
        harness.clock.advance(by: .seconds(2 * 86_400))
        #expect(dispatcher.submit(request(1)) == .enqueued)
        #expect(await eventually { dispatcher.statistics.processed == 2 })
        #expect(started.value == (withdraw ? 2 : 4))
        #expect(dispatcher.statistics.skips["consent", default: 0] == (withdraw ? 1 : 0))

        dispatcher.beginShutdown()
        #expect(await finishes(running))
    }

    @Test(
        "Affirmative denials withdraw a known EC; consent that merely can't be read doesn't",
        arguments: [
            ("host denies", ConsentDecision.denied, ConsentStrings(), SkipReason.consent, true),
            ("Sec-GPC: 1", .granted, ConsentStrings(globalPrivacyControl: true), .usOptOut, true),
            ("US privacy 1YYN", .granted, ConsentStrings(usPrivacy: "1YYN"), .usOptOut, true),
            // iabgpp-es UsNat.test: every opt-out set.
            ("GPP usnat opt-out", .granted, ConsentStrings(gpp: "DBABzw~1YNN~BVVVkkkkkpFY.YA"), .usOptOut, true),
            ("malformed US privacy", .granted, ConsentStrings(usPrivacy: "1YXN"), .malformedConsent, false),
            ("malformed GPP", .granted, ConsentStrings(gpp: "DBABMA"), .malformedConsent, false),
        ] as [(String, ConsentDecision, ConsentStrings, SkipReason, Bool)]
    )
    func whichDenialsWithdraw(
        name: String,
        host: ConsentDecision,
        strings: ConsentStrings,
        reason: SkipReason,
        withdraws: Bool
    ) async throws {
        let harness = try Harness(partners: partners(["a"]))
        try await harness.seed(1, uids: ["a": uid("kept", age: .seconds(5), now: harness.clock.now())])
        try await harness.seed(2)
        let dispatcher = PullDispatcher(kernel: harness.kernel)
        let running = Task { await dispatcher.run() }

        #expect(dispatcher.submit(request(1, consent: host, consentStrings: strings)) == .skipped(reason))
        // A marker behind it on the same queue: once EC 2's withdrawal is counted (the last step
        // of each, after the store and the metric), EC 1's turn has passed.
        #expect(dispatcher.submit(request(2, consent: .denied)) == .skipped(.consent))
        #expect(await eventually { dispatcher.statistics.withdrawals.values.reduce(0, +) == (withdraws ? 2 : 1) })
        #expect(try await harness.record(2)?.withdrawn == true)

        let record = try #require(try await harness.record(1))
        #expect(record.withdrawn == withdraws, "\(name)")
        #expect(record.partners.isEmpty == withdraws, "\(name)")
        #expect(harness.transport.records.isEmpty)
        #expect(harness.counter("pullsync_withdrawals_total", [("result", "withdrawn")]) == (withdraws ? 2 : 1))
        dispatcher.beginShutdown()
        #expect(await finishes(running))
    }

    @Test("A denied browser's repeated page views withdraw once and then cost nothing")
    func repeatedDenials() async throws {
        let harness = try Harness(partners: partners(["a"]))
        try await harness.seed(1)
        let dispatcher = PullDispatcher(kernel: harness.kernel)
        let running = Task { await dispatcher.run() }

        #expect(dispatcher.submit(request(1, consent: .denied)) == .skipped(.consent))
        #expect(await eventually { dispatcher.statistics.withdrawals["withdrawn"] == 1 })
        for _ in 0..<5 { #expect(dispatcher.submit(request(1, consent: .denied)) == .skipped(.consent)) }
        // A marker: a second EC's withdrawal, queued after the repeats.
        try await harness.seed(2)
        #expect(dispatcher.submit(request(2, consent: .denied)) == .skipped(.consent))
        #expect(await eventually { dispatcher.statistics.withdrawals["withdrawn"] == 2 })

        #expect(dispatcher.statistics.withdrawals["already_withdrawn"] == nil)
        #expect(dispatcher.statistics.skippedAtSubmit == 7)
        dispatcher.beginShutdown()
        #expect(await finishes(running))
    }

    @Test("Withdrawals already queued are made at shutdown")
    func drainedAtShutdown() async throws {
        let harness = try Harness(partners: partners(["a"]))
        try await harness.seed(1)
        let dispatcher = PullDispatcher(kernel: harness.kernel)

        #expect(dispatcher.submit(request(1, consent: .denied)) == .skipped(.consent))
        dispatcher.beginShutdown()
        #expect(await finishes(Task { await dispatcher.run() }))

        #expect(try await harness.record(1)?.withdrawn == true)
    }

    @Test("A denied EC that this node just issued is created withdrawn; a spoofed unknown one creates nothing")
    func issuedHereAndUnknown() async throws {
        let harness = try Harness(partners: partners(["a"]))
        let issued = EdgeCookie(unchecked: ec(1))
        let spoofed = EdgeCookie(unchecked: ec(2))

        #expect(await harness.kernel.withdrawDenied(issued, issuedHere: true) == "withdrawn")
        #expect(await harness.kernel.withdrawDenied(spoofed, issuedHere: false) == "unknown_ec")
        #expect(await harness.kernel.withdrawDenied(issued, issuedHere: true) == "already_withdrawn")

        #expect(try await harness.record(1)?.withdrawn == true)
        #expect(try await harness.record(2) == nil)
        // The pull the issuing page view queued finds a withdrawn root: no call.
        let report = await harness.kernel.process(request(1, issued: true))
        #expect(report.plan.requestSkip == .consent)
        #expect(harness.transport.records.isEmpty)
        #expect(harness.counter("pullsync_withdrawals_total", [("result", "withdrawn")]) == 1)
        #expect(harness.counter("pullsync_withdrawals_total", [("result", "unknown_ec")]) == 1)
        #expect(harness.counter("pullsync_withdrawals_total", [("result", "already_withdrawn")]) == 1)
    }

    @Test("The admin path: withdraw says whether the EC was known; a failing store is an error")
    func adminWithdraw() async throws {
        let harness = try Harness(partners: partners(["a"]))
        try await harness.seed(1, uids: ["a": uid("u", age: .seconds(1), now: harness.clock.now())])

        #expect(try await harness.kernel.withdraw(EdgeCookie(unchecked: ec(1))))
        #expect(try await !harness.kernel.withdraw(EdgeCookie(unchecked: ec(2))))
        #expect(try await harness.record(1)?.partners.isEmpty == true)

        let failing = try Harness(partners: partners(["a"]), graph: FailingIdentityGraph())
        await #expect(throws: StoreDown.self) { try await failing.kernel.withdraw(EdgeCookie(unchecked: ec(1))) }
        #expect(await failing.kernel.withdrawDenied(EdgeCookie(unchecked: ec(1)), issuedHere: false) == "error")
        #expect(failing.counter("pullsync_withdrawals_total", [("result", "error")]) == 2)
    }
}
