import AsyncHTTPClient
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One `pullsync serve` process, started with the same arguments but for pull sync on or off.
final class ServeProcess: Sendable {
    let label: String
    let port: Int
    let pid: Int32
    private let process: Process
    private let log: LogBox
    static let adminToken = "bench-admin-token"

    private init(label: String, port: Int, process: Process, log: LogBox) {
        self.label = label
        self.port = port
        self.pid = process.processIdentifier
        self.process = process
        self.log = log
    }

    /// Starts `binary serve ARGUMENTS --listen 127.0.0.1:0` and waits until it listens.
    static func start(
        label: String,
        binary: String,
        arguments: [String],
        environment: [String: String]
    ) async throws
        -> ServeProcess
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["serve", "--listen", "127.0.0.1:0", "--log-level", "notice"] + arguments
        var env = ProcessInfo.processInfo.environment
        env["PULLSYNC_ADMIN_TOKEN"] = adminToken
        env["PULLSYNC_EC_SECRET"] = "bench-ec-secret-0123456789"
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let errors = Pipe()
        let log = LogBox()
        errors.fileHandleForReading.readabilityHandler = { handle in log.append(handle.availableData) }
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        for _ in 0..<3000 {
            let text = log.text
            if let match = text.firstMatch(of: #/address=127\.0\.0\.1:(\d+)/#), let port = Int(match.output.1) {
                return ServeProcess(label: label, port: port, process: process, log: log)
            }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        process.terminate()
        throw BenchError("pullsync serve (\(label)) did not start: \(log.text)")
    }

    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Peak and current resident memory, from /proc (kB).
    func memory() -> (peakKB: Int, currentKB: Int) {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return (0, 0) }
        func field(_ name: String) -> Int {
            for line in status.split(separator: "\n") where line.hasPrefix(name + ":") {
                return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
            }
            return 0
        }
        return (field("VmHWM"), field("VmRSS"))
    }

    /// CPU time the process has used so far (user and system), from /proc.
    func cpuSeconds() -> Double {
        Self.stat("/proc/\(pid)/stat")?.seconds ?? 0
    }

    /// A `/proc` `stat` file's command name and its CPU time (user and system), in seconds.
    private static func stat(_ path: String) -> (name: String, seconds: Double)? {
        guard let stat = try? String(contentsOfFile: path, encoding: .utf8),
            let open = stat.firstIndex(of: "("), let end = stat.lastIndex(of: ")")
        else { return nil }
        // After the command name: state is field 3, utime and stime are fields 14 and 15.
        let fields = stat[stat.index(after: end)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (String(stat[stat.index(after: open)..<end]), (user + system) / Double(sysconf(Int32(_SC_CLK_TCK))))
    }

    /// Context switches of each of the process's threads so far (voluntary and involuntary, from
    /// `/proc/PID/task/TID/status`), by thread id: every time a thread gave up or lost its CPU.
    /// A count, so it doesn't move with the machine's speed the way CPU time does.
    func threadSwitches() -> [Int: Int] {
        perThread { tid in
            guard let status = try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/status", encoding: .utf8) else {
                return nil
            }
            return status.split(separator: "\n").filter { $0.contains("ctxt_switches:") }
                .map { Int($0.split(separator: "\t").last ?? "") ?? 0 }.reduce(0, +)
        }
    }

    /// `read` for each of the process's threads, by thread id; threads it reads nothing for are left out.
    private func perThread<Value>(_ read: (Int) -> Value?) -> [Int: Value] {
        guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else { return [:] }
        var values: [Int: Value] = [:]
        for task in tasks {
            guard let tid = Int(task), let value = read(tid) else { continue }
            values[tid] = value
        }
        return values
    }

    /// Context switches between two ``threadSwitches()`` readings; a thread that ended in between
    /// is not counted (libdispatch lets an idle worker go only after seconds without work).
    static func switches(before: [Int: Int], after: [Int: Int]) -> Int {
        after.map { tid, count in count - (before[tid] ?? 0) }.reduce(0, +)
    }

    /// CPU time each of the process's threads has used so far (user and system), by thread id,
    /// with the thread's name.
    func threadCPU() -> [Int: (name: String, seconds: Double)] {
        perThread { tid in Self.stat("/proc/\(pid)/task/\(tid)/stat") }
    }

    /// How many of Swift's cooperative-pool threads (libdispatch's workers, named `…default-qos`)
    /// each used at least a tenth of `seconds` between `before` and `after` (two ``threadCPU()``
    /// readings): libdispatch on Linux adds workers beyond the core count when it sees one not
    /// runnable while work is queued, and a round served by three busy workers on two cores costs
    /// more CPU per page than one served by two.
    static func busyPoolThreads(
        before: [Int: (name: String, seconds: Double)],
        after: [Int: (name: String, seconds: Double)],
        seconds: Double
    ) -> Int {
        after.filter { tid, thread in
            thread.name.hasSuffix("default-qos") && thread.seconds - (before[tid]?.seconds ?? 0) >= seconds / 10
        }.count
    }

    /// The admin API's Prometheus text.
    func metrics(client: HTTPClient) async throws -> String {
        var request = HTTPClientRequest(url: baseURL + "/_pullsync/metrics")
        request.headers.add(name: "Authorization", value: "Bearer \(Self.adminToken)")
        let response = try await client.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 16 << 20)
        return String(buffer: body)
    }

    /// The sum of a metric's samples whose labels contain every one of `labels` (`name="value"`).
    static func sum(_ metrics: String, _ name: String, _ labels: [String] = []) -> Double {
        var total = 0.0
        for line in metrics.split(separator: "\n") where line.hasPrefix(name + "{") || line.hasPrefix(name + " ") {
            guard labels.allSatisfy({ line.contains($0) }),
                let value = line.split(separator: " ").last.flatMap({ Double($0) })
            else { continue }
            total += value
        }
        return total
    }

    func stop() async {
        if process.isRunning { process.terminate() }
        for _ in 0..<1000 where process.isRunning { try? await Task.sleep(for: .milliseconds(10)) }
        if process.isRunning { kill(pid, SIGKILL) }
    }

    var output: String { log.text }
}

/// A child's standard error, collected as it arrives.
private final class LogBox: Sendable {
    private let log = Mutex("")
    func append(_ data: Data) { log.withLock { $0 += String(decoding: data, as: UTF8.self) } }
    var text: String { log.withLock { $0 } }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
