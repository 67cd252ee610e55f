import Synchronization

/// Awaits `body`, giving up after `limit`: a hang guard for tests, not a timing assertion.
///
/// Returns `body`'s result, or `nil` if it hasn't finished by then. A test guarding against an
/// await that never ends has to fail, not hang the whole run, and a structured child that never
/// ends can't be left behind: so `body` runs in a task of its own, cancelled and abandoned if it
/// hasn't ended by then. The guard's timer stops as soon as `body` ends.
package func finishing<T: Sendable>(
    within limit: Duration = .seconds(300),
    _ body: @escaping @Sendable () async throws -> T
) async -> Result<T, any Error>? {
    let answered = Mutex(false)
    return await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, any Error>?, Never>) in
        let answer: @Sendable (Result<T, any Error>?) -> Void = { value in
            let first = answered.withLock { answered in
                defer { answered = true }
                return !answered
            }
            if first { continuation.resume(returning: value) }
        }
        let work = Task {
            do { answer(.success(try await body())) } catch { answer(.failure(error)) }
        }
        let timer = Task {
            try? await Task.sleep(for: limit)
            guard !Task.isCancelled else { return }
            answer(nil)
            work.cancel()
        }
        Task {
            await work.value
            timer.cancel()
        }
    }
}
