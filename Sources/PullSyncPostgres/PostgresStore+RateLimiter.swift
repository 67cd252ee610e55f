package import PullSyncKernel

// RateLimiter: counts, leases and shared budgets, each one statement.
extension PostgresStore {
    package var sharesLeases: Bool { true }

    /// Partner budgets are sliding windows on `budget:{partner}` rows of the rate table, shared
    /// by every node (see ``takeBudget(_:at:)``).
    package var sharesBudgets: Bool { true }

    /// One statement: an upsert of the partner's `budget:` row that appends the send time only if
    /// fewer than `calls` sends are inside the window (and, for budgets of 20 and more, fewer
    /// than a tenth of them inside its last tenth). Concurrent statements wait for each
    /// other's row lock, and the time is read after it (``BudgetClock/database``), so neither
    /// the wait nor the round trip lets calls bunch up in one second.
    package func takeBudget(_ budget: SharedBudget, at now: Timestamp) async throws -> Bool {
        // Inlined, not bound: a fixed SQL expression or an integer, never user input.
        let time =
            budgetClock == .database
            ? "(extract(epoch from clock_timestamp()) * 1000000000)::bigint" : "\(now.nanosecondsSinceEpoch)::bigint"
        let window = budget.window.nanoseconds
        let calls = Int32(clamping: budget.calls)
        // Budgets of 20/s and more are spread: at most a tenth in any tenth of the window (as
        // `PartnerGuard` does per process); 0 when not spread.
        let perTenth = Int32(clamping: budget.calls >= 20 ? (budget.calls + 9) / 10 : 0)
        return try await run(
            """
            WITH taken AS (
                INSERT INTO pullsync_rate AS r (key, times, calls, expires_at)
                SELECT \(budget.key), ARRAY[n.t], \(calls), n.t + \(window)::bigint
                FROM (SELECT \(unescaped: time) AS t) n
                ON CONFLICT (key) DO UPDATE SET
                    times = array_append(
                        ARRAY(SELECT t FROM unnest(r.times) AS t WHERE t > \(unescaped: time) - \(window)::bigint),
                        \(unescaped: time)),
                    calls = excluded.calls,
                    expires_at = \(unescaped: time) + \(window)::bigint
                WHERE cardinality(ARRAY(
                        SELECT t FROM unnest(r.times) AS t WHERE t > \(unescaped: time) - \(window)::bigint
                    )) < excluded.calls
                    AND (\(perTenth)::integer = 0 OR cardinality(ARRAY(
                        SELECT t FROM unnest(r.times) AS t WHERE t > \(unescaped: time) - \(window / 10)::bigint
                    )) < \(perTenth)::integer)
                RETURNING 1
            )
            SELECT count(*)::integer FROM taken
            """
        ) { rows in
            var taken = 0
            for try await value in rows.decode(Int.self) { taken = value }
            return taken > 0
        }
    }

    package func acquire(_ requests: [RateLimitRequest], at now: Timestamp) async throws -> [Bool] {
        try await count(requests, lease: nil, at: now).map { $0 == .admitted }
    }

    package func admit(
        _ requests: [RateLimitRequest],
        lease: CallLease,
        at now: Timestamp
    ) async throws
        -> [LeasedAdmission]
    {
        try await count(requests, lease: lease, at: now)
    }

    /// One statement for the whole batch (see ``countedCTE``).
    private func count(
        _ requests: [RateLimitRequest],
        lease: CallLease?,
        at now: Timestamp
    ) async throws
        -> [LeasedAdmission]
    {
        guard !requests.isEmpty else { return [] }
        let batch = RateBatch(requests, lease: lease, at: now)
        let (counted, leased): (Set<String>, Set<String>) = try await run(
            """
            WITH input AS (
                SELECT i.*, \(batch.at)::bigint AS at, \(batch.holder)::text AS holder, \(batch.until)::bigint AS until
                FROM unnest(\(batch.keys)::text[], \(batch.calls)::integer[], \(batch.windows)::bigint[])
                    AS i(key, calls, window_ns)
            ), \(unescaped: Self.countedCTE)
            SELECT i.key, EXISTS (SELECT 1 FROM counted c WHERE c.key = i.key), \(unescaped: Self.leasedElsewhere)
            FROM input i
            """
        ) { rows in
            var counted: Set<String> = []
            var leased: Set<String> = []
            for try await (key, admitted, isLeased) in rows.decode((String, Bool, Bool).self) {
                if admitted { counted.insert(key) }
                if isLeased { leased.insert(key) }
            }
            return (counted, leased)
        }
        return batch.admissions(counted: counted, leased: leased)
    }

    /// The CTE `counted` of a rate-limit batch, after an `input` CTE with columns `key`, `calls`,
    /// `window_ns`, `at`, `holder` and `until`: for each key, an upsert of its row that appends
    /// `at` to the send times only if fewer than `calls` are inside the window and (with a
    /// lease) no other lease is unexpired, and then takes the lease. It holds the keys counted.
    /// Concurrent statements on one key wait for each other's row lock and re-check on the row
    /// they then see; keys are taken in sorted order so that two batches never wait on each other
    /// in a cycle. (`excluded.times[1]` is the batch's `at`.)
    static let countedCTE = """
        counted AS (
            INSERT INTO pullsync_rate AS r (key, times, calls, expires_at, lease_holder, lease_until)
            SELECT i.key, ARRAY[i.at], i.calls, i.at + i.window_ns, i.holder, i.until
            FROM input i
            ORDER BY i.key
            ON CONFLICT (key) DO UPDATE SET
                times = array_append(
                    ARRAY(
                        SELECT t FROM unnest(r.times) AS t
                        WHERE t > excluded.times[1] - (excluded.expires_at - excluded.times[1])
                    ),
                    excluded.times[1]),
                calls = excluded.calls,
                expires_at = excluded.expires_at,
                lease_holder = COALESCE(excluded.lease_holder, r.lease_holder),
                lease_until = COALESCE(excluded.lease_until, r.lease_until)
            WHERE cardinality(ARRAY(
                    SELECT t FROM unnest(r.times) AS t
                    WHERE t > excluded.times[1] - (excluded.expires_at - excluded.times[1])
                )) < excluded.calls
                AND (excluded.lease_holder IS NULL OR r.lease_until IS NULL OR r.lease_until <= excluded.times[1])
            RETURNING r.key
        )
        """

    /// Whether input row `i`'s key had an unexpired lease before the statement (read from the
    /// statement's snapshot): tells a refusal for a lease from one for the limit.
    static let leasedElsewhere = """
        EXISTS (SELECT 1 FROM pullsync_rate r WHERE r.key = i.key AND r.lease_until > i.at AND i.holder IS NOT NULL)
        """

    package func releaseLeases(_ keys: [RateLimitKey], holder: String) async throws {
        try await releaseLeases(text: keys.map(\.description), holder: holder)
    }

    /// Gives back `holder`'s leases on the keys persisted as `keys`.
    func releaseLeases(text keys: [String], holder: String) async throws {
        guard !keys.isEmpty else { return }
        try await run(
            """
            UPDATE pullsync_rate SET lease_holder = NULL, lease_until = NULL
            WHERE key = ANY(\(keys)::text[]) AND lease_holder = \(holder)
            """
        ) { rows in for try await _ in rows {} }
    }

    /// Removes one send time `now` from each key's row, and `holder`'s lease on it, in one
    /// statement (see ``CombinedStore/uncount(_:at:holder:)``).
    package func uncount(_ keys: [RateLimitKey], at now: Timestamp, holder: String?) async throws {
        guard !keys.isEmpty else { return }
        let at = now.nanosecondsSinceEpoch
        try await run(
            """
            UPDATE pullsync_rate SET
                times = times[:array_position(times, \(at)::bigint) - 1]
                    || times[array_position(times, \(at)::bigint) + 1:],
                lease_holder = CASE WHEN lease_holder = \(holder)::text THEN NULL ELSE lease_holder END,
                lease_until = CASE WHEN lease_holder = \(holder)::text THEN NULL ELSE lease_until END
            WHERE key = ANY(\(keys.map(\.description))::text[]) AND array_position(times, \(at)::bigint) IS NOT NULL
            """
        ) { rows in for try await _ in rows {} }
    }

    package func count(key: RateLimitKey, window: Duration, at now: Timestamp) async throws -> Int {
        let key = key.description
        let at = now.nanosecondsSinceEpoch
        let start = at - window.nanoseconds
        return try await run(
            """
            SELECT COALESCE((
                SELECT cardinality(ARRAY(SELECT t FROM unnest(times) AS t WHERE t > \(start) AND t <= \(at)))
                FROM pullsync_rate WHERE key = \(key)
            ), 0)::integer
            """
        ) { rows in
            var used = 0
            for try await value in rows.decode(Int.self) { used = value }
            return used
        }
    }
}

/// A rate-limit batch's columns, as the statements that count it bind them.
struct RateBatch {
    var keys: [String]
    var calls: [Int32]
    var windows: [Int64]
    var at: Int64
    var holder: String?
    var until: Int64?

    init(_ requests: [RateLimitRequest], lease: CallLease?, at now: Timestamp) {
        // The persisted text of each key, formatted here, inside the store's round trip.
        keys = requests.map(\.key.description)
        calls = requests.map { Int32(clamping: $0.policy.calls) }
        windows = requests.map { $0.policy.window.nanoseconds }
        at = now.nanosecondsSinceEpoch
        holder = lease?.holder
        until = lease?.expiresAt.nanosecondsSinceEpoch
    }

    /// Each request's admission, in order, from the keys counted and those refused for a lease.
    func admissions(counted: Set<String>, leased: Set<String>) -> [LeasedAdmission] {
        keys.map { key in
            if counted.contains(key) { return .admitted }
            // Refused: the snapshot tells which rule it was (the decision itself was exact).
            return leased.contains(key) ? .leased : .rateLimited
        }
    }
}
