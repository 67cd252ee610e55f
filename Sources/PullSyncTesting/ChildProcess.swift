package import Foundation
import Synchronization

/// What a child process printed and how it ended.
package struct ChildProcessResult: Sendable {
    package var status: Int32
    package var stdout: Data
    package var stderr: Data
    /// Whether it exited (rather than dying on a signal).
    package var exitedNormally: Bool
}

/// A child process that had not ended by the hang guard of ``runToCompletion(_:within:)``.
package struct ChildProcessDidNotEnd: Error, CustomStringConvertible {
    package var command: String
    package var limit: Duration
    package var description: String { "\(command) did not end within \(limit)" }
}

/// Runs `process` (configured but not started) to its end, collecting standard output and
/// error, with standard input empty unless set; gives up with ``ChildProcessDidNotEnd`` after
/// `limit` (a hang guard, not a timing assertion: a test must fail, not hang the run).
package func runToCompletion(
    _ process: Process,
    within limit: Duration = .seconds(300)
) async throws -> ChildProcessResult {
    let command = ([process.executableURL?.lastPathComponent ?? "?"] + (process.arguments ?? [])).joined(separator: " ")
    guard let ended = await finishing(within: limit, { try await runUnguarded(process) }) else {
        throw ChildProcessDidNotEnd(command: command, limit: limit)
    }
    return try ended.get()
}

/// The blocking reads and the wait for the exit happen on two threads of their own, never on
/// a Swift concurrency thread: blocking the cooperative pool (two threads on a 2-core machine)
/// would stall every other test in the process for as long as the child runs.
private func runUnguarded(_ process: Process) async throws -> ChildProcessResult {
    let stdout = Pipe()
    let stderr = Pipe()
    process.standardOutput = stdout
    process.standardError = stderr
    if process.standardInput == nil { process.standardInput = FileHandle.nullDevice }
    try process.run()
    return await withCheckedContinuation { continuation in
        let errors = Mutex(Data())
        let errorsRead = DispatchSemaphore(value: 0)
        // Both pipes are drained at once, so a child filling one never blocks on it.
        Thread {
            let data = stderr.fileHandleForReading.readDataToEndOfFile()
            errors.withLock { $0 = data }
            errorsRead.signal()
        }.start()
        Thread {
            let output = stdout.fileHandleForReading.readDataToEndOfFile()
            errorsRead.wait()
            process.waitUntilExit()
            continuation.resume(
                returning: ChildProcessResult(
                    status: process.terminationStatus,
                    stdout: output,
                    stderr: errors.withLock { $0 },
                    exitedNormally: process.terminationReason == .exit
                )
            )
        }.start()
    }
}
