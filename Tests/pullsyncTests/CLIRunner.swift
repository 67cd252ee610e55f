import Foundation
import Synchronization

/// The package root, found from this file's path.
let packageRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// What one run of the `pullsync` binary printed and returned.
struct CLIResult: Sendable {
    var status: Int32
    var stdout: String
    var stderr: String
    /// Whether the process exited (rather than dying on a signal).
    var exitedNormally: Bool
}

/// The built `pullsync` binary, beside the test bundle.
func pullsyncBinary() throws -> URL {
    try builtBinary("pullsync")
}

/// A built executable of this package, beside the test bundle.
func builtBinary(_ name: String) throws -> URL {
    var candidates: [URL] = []
    if let executable = Bundle.main.executableURL {
        candidates.append(executable.deletingLastPathComponent().appendingPathComponent(name))
    }
    let argv0 = URL(fileURLWithPath: CommandLine.arguments[0])
    candidates.append(argv0.deletingLastPathComponent().appendingPathComponent(name))
    candidates.append(packageRoot.appendingPathComponent(".build/debug/\(name)"))
    guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
        throw CLIError(message: "\(name) binary not found in \(candidates.map(\.path))")
    }
    return found
}

struct CLIError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Runs `pullsync` with `arguments` in `directory`, with `environment` added.
func runPullSync(
    _ arguments: [String],
    in directory: URL = packageRoot,
    environment: [String: String] = [:]
) async throws -> CLIResult {
    try await run(pullsyncBinary(), arguments, in: directory, environment: environment)
}

/// Runs `executable` with `arguments` in `directory`, with `environment` added.
func run(
    _ executable: URL,
    _ arguments: [String],
    in directory: URL = packageRoot,
    environment: [String: String] = [:]
) async throws -> CLIResult {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.currentDirectoryURL = directory
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
    let stdout = Pipe()
    let stderr = Pipe()
    process.standardOutput = stdout
    process.standardError = stderr
    process.standardInput = FileHandle.nullDevice
    try process.run()
    // Read both pipes concurrently so a full pipe never blocks the child.
    async let out = Task.detached { stdout.fileHandleForReading.readDataToEndOfFile() }.value
    async let err = Task.detached { stderr.fileHandleForReading.readDataToEndOfFile() }.value
    let (outData, errData) = await (out, err)
    process.waitUntilExit()
    return CLIResult(
        status: process.terminationStatus,
        stdout: String(decoding: outData, as: UTF8.self),
        stderr: String(decoding: errData, as: UTF8.self),
        exitedNormally: process.terminationReason == .exit
    )
}

/// A fresh temporary folder, removed by the caller.
func makeTemporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("pullsync-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Collects a pipe's text as it arrives.
final class Collector: Sendable {
    let text = Mutex("")
    func append(_ data: Data) { text.withLock { $0 += String(decoding: data, as: UTF8.self) } }
    var value: String { text.withLock { $0 } }
}

/// Polls `condition` every 10 ms, `attempts` times at most; whether it came to hold.
func waitFor(_ condition: () -> Bool, attempts: Int = 1000) async throws -> Bool {
    for _ in 0..<attempts {
        if condition() { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}
