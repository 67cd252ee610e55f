package import PullSyncKernel
import SQLiteNIO

// RateLimiter: calls counted per key and window.
extension SQLiteStore {
    package func acquire(_ requests: [RateLimitRequest], at now: Timestamp) async throws -> [Bool] {
        guard !requests.isEmpty else { return [] }
        return try await transaction { connection in try await Self.acquire(requests, at: now, on: connection) }
    }

    /// Counts each call whose key is under its limit: every key's count read in one statement,
    /// every admitted call written in one. (Each statement is compiled and run on the thread
    /// pool: two per request, not two per call.)
    static func acquire(
        _ requests: [RateLimitRequest],
        at now: Timestamp,
        on connection: SQLiteConnection
    ) async throws -> [Bool] {
        guard !requests.isEmpty else { return [] }
        // The persisted text of each key, formatted here, inside the store's round trip.
        let keys = requests.map(\.key.description)
        var asked: [SQLiteData] = []
        asked.reserveCapacity(keys.count * 3)
        for (index, (key, request)) in zip(keys, requests).enumerated() {
            asked += [.integer(index), .text(key), .integer(int(now - request.policy.window))]
        }
        // A key SQLite gave no count for (it always does) is not admitted.
        var used = [Int](repeating: .max, count: keys.count)
        for statement in statements(asked, columns: 3) {
            // Calls counted at a later time count too (a request's time is taken before its turn
            // comes, so turns can run out of time order): no window may hold more than the limit.
            let rows = try await connection.query(
                """
                WITH asked (n, key, since) AS (VALUES \(statement.placeholders))
                SELECT n, (SELECT count(*) FROM pullsync_rate_events e WHERE e.key = asked.key AND e.at > asked.since)
                    AS used
                FROM asked
                """,
                statement.values
            )
            for row in rows {
                guard let index = row.column("n")?.integer, used.indices.contains(index) else { continue }
                used[index] = row.column("used")?.integer ?? 0
            }
        }
        // The keys are distinct (``RateLimiter/acquire(_:at:)``): each is decided on its own.
        var admitted: [Bool] = []
        admitted.reserveCapacity(keys.count)
        var events: [SQLiteData] = []
        for (index, (key, request)) in zip(keys, requests).enumerated() {
            admitted.append(used[index] < request.policy.calls)
            guard admitted[index] else { continue }
            events += [.text(key), .integer(int(now)), .integer(int(now + request.policy.window))]
        }
        for statement in statements(events, columns: 3) {
            _ = try await connection.query(
                "INSERT INTO pullsync_rate_events (key, at, expires_at) VALUES \(statement.placeholders)",
                statement.values
            )
        }
        return admitted
    }

    /// Deletes one call counted at `now` under each key (see
    /// ``CombinedStore/uncount(_:at:holder:)``).
    package func uncount(_ keys: [RateLimitKey], at now: Timestamp, holder: String?) async throws {
        guard !keys.isEmpty else { return }
        try await transaction { connection in
            for key in keys {
                _ = try await connection.query(
                    """
                    DELETE FROM pullsync_rate_events WHERE rowid = (
                        SELECT rowid FROM pullsync_rate_events WHERE key = ?1 AND at = ?2 LIMIT 1
                    )
                    """,
                    [.text(key.description), .integer(Self.int(now))]
                )
            }
        }
    }

    package func count(key: RateLimitKey, window: Duration, at now: Timestamp) async throws -> Int {
        let key = key.description
        return try await alone { connection in
            try await Self.count(key, window: window, at: now, on: connection)
        }
    }

    private static func count(
        _ key: String,
        window: Duration,
        at now: Timestamp,
        on connection: SQLiteConnection
    )
        async throws -> Int
    {
        // Calls counted at a later time count too (a request's time is taken before its turn
        // comes, so turns can run out of time order): no window may hold more than the limit.
        let rows = try await connection.query(
            "SELECT count(*) AS used FROM pullsync_rate_events WHERE key = ?1 AND at > ?2",
            [.text(key), .integer(int(now - window))]
        )
        return Int(rows.first?.column("used")?.integer ?? 0)
    }
}
