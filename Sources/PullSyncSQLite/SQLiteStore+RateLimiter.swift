package import PullSyncKernel
import SQLiteNIO

// RateLimiter: calls counted per key and window.
extension SQLiteStore {
    package func acquire(_ requests: [RateLimitRequest], at now: Timestamp) async throws -> [Bool] {
        guard !requests.isEmpty else { return [] }
        return try await transaction { connection in try await Self.acquire(requests, at: now, on: connection) }
    }

    static func acquire(
        _ requests: [RateLimitRequest],
        at now: Timestamp,
        on connection: SQLiteConnection
    ) async throws -> [Bool] {
        var admitted: [Bool] = []
        for request in requests { admitted.append(try await acquire(request, at: now, on: connection)) }
        return admitted
    }

    /// Counts one call if its key is under the limit; `false` when it is not.
    static func acquire(_ request: RateLimitRequest, at now: Timestamp, on connection: SQLiteConnection) async throws
        -> Bool
    {
        // The persisted text of the key, formatted here, inside the store's round trip.
        let key = request.key.description
        let used = try await count(key, window: request.policy.window, at: now, on: connection)
        guard used < request.policy.calls else { return false }
        _ = try await connection.query(
            "INSERT INTO pullsync_rate_events (key, at, expires_at) VALUES (?1, ?2, ?3)",
            [.text(key), .integer(int(now)), .integer(int(now + request.policy.window))]
        )
        return true
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
        return try await transaction { connection in
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
