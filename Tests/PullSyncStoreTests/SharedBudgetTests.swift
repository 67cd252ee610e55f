import Logging
import PullSync
import PullSyncStorage
@testable import PullSyncPostgres
import PullSyncTesting
import PartnerSimulator
import PostgresNIO
import ServiceLifecycle
import Synchronization
import Testing

/// Issue 8: a partner's calls-per-second budget shared by every node on one PostgreSQL, taken in
/// the same statement as the rate-limit counts and leases.
@Suite("Shared budgets on PostgreSQL", .enabled(if: TestPostgres.isAvailable), .serialized)
struct SharedBudgetTests {
    @Test("Budgets as windows: calls / window never exceeds the budget")
    func budgetWindows() {
        let cases: [(Double, Int, Duration)] = [
            (50, 50, .seconds(1)), (2.5, 2, .milliseconds(800)), (0.5, 1, .seconds(2)), (1, 1, .seconds(1)),
        ]
        for (perSecond, calls, window) in cases {
            let budget = SharedBudget(partnerID: "a", perSecond: perSecond)
            #expect(budget.key == "budget:a")
            #expect(budget.calls == calls)
            #expect(budget.window == window)
        }
    }

    @Test("Two nodes share a budget of 2/s: the third send in any second is refused on either node")
    func sharedAcrossStores() async throws {
        let url = try await freshURL(.postgres)
        // The test clock stamps budget sends here, so that windows can be stepped through.
        let first = try await PostgresStore.open(PostgresStoreURL(parsing: url), operationTimeout: busyMachineTimeout, budgetClock: .caller)
        let second = try await PostgresStore.open(PostgresStoreURL(parsing: url), operationTimeout: busyMachineTimeout, budgetClock: .caller)
        #expect(first.sharesBudgets)
        let a = SharedBudget(partnerID: "a", perSecond: 2)
        try await first.whileRunning { () async throws in
            try await second.whileRunning { () async throws in
                #expect(try await first.takeBudget(a, at: t0))
                #expect(try await second.takeBudget(a, at: t0 + .milliseconds(500)))
                #expect(try await first.takeBudget(a, at: t0 + .milliseconds(600)) == false)
                #expect(try await second.takeBudget(a, at: t0 + .milliseconds(999)) == false)
                // The window slides: the first send leaves it a second later, the second one later still.
                #expect(try await second.takeBudget(a, at: t0 + .seconds(1)))
                #expect(try await first.takeBudget(a, at: t0 + .seconds(1)) == false)
                #expect(try await first.takeBudget(a, at: t0 + .milliseconds(1500)))
                // Another partner's budget is its own.
                #expect(
                    try await first.takeBudget(SharedBudget(partnerID: "b", perSecond: 1), at: t0 + .milliseconds(1500))
                )
                // Budget rows are swept like rate-limit rows once their window has passed.
                #expect(try await first.sweep(at: t0 + .seconds(5)) == 2)
            }
        }
    }

    @Test("With the database's clock, 100 concurrent sends for a budget of 50/s: 5 go (a tenth in a tenth of a second)")
    func databaseClock() async throws {
        try await withStore(.postgres) { opened async throws in
            let store = try #require(opened.store as? PostgresStore)
            let budget = SharedBudget(partnerID: "a", perSecond: 50)
            let taken = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<100 { group.addTask { try await store.takeBudget(budget, at: t0) } }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            // At most 5 in any 100 ms of database time, and 50 in the second: more than 5 only if
            // the 100 statements spread over more than 100 ms.
            #expect(taken >= 5 && taken <= 50)
        }
    }

    @Test("Three dispatchers on one PostgreSQL, a budget of 20/s, a flood of known ECs: at most 20 grants in any second")
    func floodAcrossNodes() async throws {
        let server = try await PartnerServer.start()
        // No UID: the ECs stay eligible, so only the budget stops calls.
        server.script(path: "/pull", .status(404))
        let url = try await freshURL(.postgres)
        var partner = MultiNodeTests.partner(port: server.port, calls: 10)
        // Low enough that even a machine busy with other work offers the partner more than the
        // budget (the control below); high enough to be spread over tenths of a second.
        partner.policy.budgetPerSecond = 20
        var logger = Logger(label: "budget-flood")
        logger.logLevel = .error
        let nodes = try await (0..<3).asyncMap { _ in try await Node(url: url, partner: partner, logger: logger) }
        let ecCount = 1_500
        // Every EC is known: seeded up front, 25 at a time, through a store of its own (patient:
        // the machine may be busy).
        let seeder = try await PostgresStore.open(
            PostgresStoreURL(parsing: url),
            operationTimeout: .seconds(30),
            logger: logger
        )
        try await seeder.whileRunning {
            // Every budget token granted is recorded with its database time, as the statement
            // that took it saw it: the budget is measured where it is enforced, not at the partner
            // (where network and scheduling can bunch calls granted a second apart). The partner is
            // `hot`, so its budget's key is `budget:hot`.
            _ = try await seeder.run("CREATE TABLE test_budget_grants (t bigint NOT NULL)") { _ in 0 }
            _ = try await seeder.run(
                """
                CREATE FUNCTION test_record_grant() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    INSERT INTO test_budget_grants VALUES (NEW.times[cardinality(NEW.times)]);
                    RETURN NEW;
                END $$
                """
            ) { _ in 0 }
            _ = try await seeder.run(
                """
                CREATE TRIGGER test_record_grant AFTER INSERT OR UPDATE ON pullsync_rate
                FOR EACH ROW WHEN (NEW.key = 'budget:hot') EXECUTE FUNCTION test_record_grant()
                """
            ) { _ in 0 }
            for start in stride(from: 0, to: ecCount, by: 25) {
                try await withThrowingTaskGroup(of: Void.self) { seed in
                    for n in start..<min(start + 25, ecCount) {
                        seed.addTask {
                            _ = try await seeder.createRoot(for: edgeCookie(10_000 + n), at: SystemWallClock().now())
                        }
                    }
                    try await seed.waitForAll()
                }
            }
        }

        try await withThrowingTaskGroup(of: Void.self) { group in
            for node in nodes { node.start(in: &group) }
            // The flood: every known EC once per round, over the three nodes, for three rounds;
            // the dispatchers' queues drop what they can't take, as in production.
            for round in 0..<3 {
                for n in 0..<ecCount {
                    let node = nodes[(n + round) % 3]
                    _ = node.dispatcher.submit(
                        OrganicRequest(path: "/a/\(n)", edgeCookie: edgeCookie(10_000 + n).value, consent: .granted)
                    )
                    if n % 100 == 0 { await Task.yield() }
                }
                // The flood arrives over about a second (a load shape, not an ordering): the budget is
                // per second of real time in the shared store, and the checks hold however it interleaves.
                try await Task.sleep(for: .milliseconds(300))
            }
            #expect(await eventually { nodes.allSatisfy { $0.dispatcher.statistics.processed == $0.submitted } })
            for node in nodes { node.dispatcher.beginShutdown() }
            for node in nodes { await node.transport.shutdown() }
            group.cancelAll()
        }

        let calls = server.requestCount(path: "/pull")
        // Refused by the budget when planned (a `budget` skip), or when about to be sent (decided,
        // never sent: every plan here decides one call or a skip, and the budget is the only check
        // at sending time). Which of the two takes the refusals depends on timing.
        let budgetRefusals = nodes.map { node in
            let statistics = node.dispatcher.statistics
            let skips = statistics.skips.values.reduce(0, +)
            return statistics.skips["budget", default: 0] + statistics.processed - statistics.calls - skips
        }.reduce(0, +)
        // The most grants in any window of database time: a second, and a tenth of one (both ends
        // included, so a window is a nanosecond short of its length).
        let check = try await PostgresStore.open(
            PostgresStoreURL(parsing: url),
            operationTimeout: .seconds(30),
            logger: logger
        )
        let (perSecond, perTenth, total) = try await check.whileRunning {
            @Sendable func peak(within nanoseconds: Int64) async throws -> Int {
                try await check.run(
                    """
                    SELECT coalesce(max(n), 0)::integer FROM (
                        SELECT count(*) OVER (
                            ORDER BY t RANGE BETWEEN CURRENT ROW AND \(unescaped: String(nanoseconds))::bigint FOLLOWING
                        ) AS n FROM test_budget_grants
                    ) w
                    """
                ) { rows in
                    var peak = 0
                    for try await value in rows.decode(Int.self) { peak = value }
                    return peak
                }
            }
            // A window wider than the whole flood: every grant.
            return (
                try await peak(within: 999_999_999), try await peak(within: 99_999_999),
                try await peak(within: 3_600_000_000_000)
            )
        }
        #expect(perSecond <= 20, "at most 20 grants in any second, across three nodes")
        #expect(perTenth <= 2, "spread: at most 2 in any tenth of a second")
        #expect(total > 20 && total == calls, "every call sent had a grant recorded (control)")
        #expect(calls > 20, "the flood reached the partner beyond one second's budget (control)")
        #expect(budgetRefusals > 0, "the budget refused calls (control)")
        try await server.shutdown()
    }
}
