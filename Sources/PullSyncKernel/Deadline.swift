/// `body`'s time ran out (see ``withDeadline(_:onExpiry:_:)``).
package struct DeadlineExceeded: Error, Sendable, Hashable {
    /// The time `body` was given.
    package var timeout: Duration
}

/// Runs `body`, cancelling it after `timeout`; then calls `onExpiry` (for work that ignores
/// cancellation and must be cut another way, such as closing its connection) and throws
/// ``DeadlineExceeded``, whatever `body` throws as it ends. Structured: it returns only once
/// `body` has ended, so `body` must end when cancelled or when `onExpiry` has run.
package func withDeadline<T: Sendable>(
    _ timeout: Duration,
    onExpiry: @escaping @Sendable () -> Void = {},
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        defer { group.cancelAll() }
        let first: T??
        do {
            first = try await group.next()
        } catch is CancellationError where !Task.isCancelled {
            // `body` gave up because the deadline cancelled it first: the deadline is why.
            throw DeadlineExceeded(timeout: timeout)
        }
        guard let first, let value = first else {
            // The deadline came first (or the caller was cancelled: the same for `body`).
            onExpiry()
            throw DeadlineExceeded(timeout: timeout)
        }
        return value
    }
}
