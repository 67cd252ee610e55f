/// Polls `condition` until it holds, and returns whether it did.
///
/// A hang guard, not a timing assertion: `limit` is generous (300 s by default) and only stops a
/// test that would otherwise wait forever. (60 s was not enough: on a 2-core machine running
/// three builds beside the suite, hundreds of tests sharing two threads left a dispatcher's
/// first request unprocessed for over a minute.) Use it for conditions nothing can signal (counters of
/// a dispatcher, rows in a store, a child process); where a gate or ``ScriptedTransport/started(_:within:)``
/// can signal the event, wait on that instead. A cancelled caller gets one last look.
public func eventually(
    within limit: Duration = .seconds(300),
    _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        // The poll interval: how often to look, not how long anything may take.
        do {
            try await Task.sleep(for: .milliseconds(5))
        } catch {
            break  // cancelled
        }
    }
    return try await condition()
}
