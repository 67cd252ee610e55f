import Foundation
import PullSyncTesting
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
    let result = try await runToCompletion(process)
    return CLIResult(
        status: result.status,
        stdout: String(decoding: result.stdout, as: UTF8.self),
        stderr: String(decoding: result.stderr, as: UTF8.self),
        exitedNormally: result.exitedNormally
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

/// A `pullsync serve` process started by a test, its standard error collected as it arrives.
final class ServeProcess {
    let process = Process()
    let log = Collector()
    private let errors = Pipe()
    /// The port it listens on.
    private(set) var port = 0

    /// Starts `pullsync serve --listen 127.0.0.1:0` with `arguments` (and `environment` added to
    /// the test's) and waits until it listens.
    init(_ arguments: [String], environment: [String: String] = [:]) async throws {
        process.executableURL = try pullsyncBinary()
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        // A generous connect timeout (hidden option): on a busy machine a loopback TLS handshake can take
        // longer than the product's 1 s. Pull sync never gives way to the busy machine: tests count what
        // it decides.
        process.arguments =
            ["serve", "--listen", "127.0.0.1:0", "--connect-timeout", "30", "--cpu-pressure-limit", "0"] + arguments
        errors.fileHandleForReading.readabilityHandler = { [log] handle in log.append(handle.availableData) }
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let log = self.log
        guard await eventually({ log.value.contains("pullsync serve listening") }),
            let port = log.value.firstMatch(of: #/address=127\.0\.0\.1:(\d+)/#).flatMap({ Int($0.output.1) })
        else {
            stop()
            throw CLIError(message: "pullsync serve did not start listening: \(log.value)")
        }
        self.port = port
    }

    /// Terminates it if it still runs, and stops collecting.
    func stop() {
        if process.isRunning { process.terminate() }
        errors.fileHandleForReading.readabilityHandler = nil
    }
}
