import Foundation
import PullSyncTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `pullsync serve` calls partners from libdispatch's background-QoS threads (below the pages'
/// priority) unless `--no-background-priority` is given.
@Suite(.serialized) struct ServeBackgroundPriorityTests {
    static let hasProcTasks = FileManager.default.fileExists(atPath: "/proc/self/task")

    /// The names of `pid`'s threads (truncated by Linux to 15 bytes).
    static func threadNames(_ pid: Int32) throws -> [String] {
        let tasks = "/proc/\(pid)/task"
        return try FileManager.default.contentsOfDirectory(atPath: tasks).compactMap {
            try? String(contentsOfFile: "\(tasks)/\($0)/comm", encoding: .utf8)
        }
    }

    @Test(.enabled(if: hasProcTasks), arguments: [false, true])
    func partnerCallsRunOnBackgroundThreadsUnlessTurnedOff(turnedOff: Bool) async throws {
        // Answered only after the test: the call is in flight while the test looks at the threads
        // (libdispatch lets an idle worker go after 5 s).
        let local = try await LocalPartner.start(answering: .delayed(.seconds(3600), .uid("u-1")))
        let serve = try await ServeProcess(
            ["--partners", local.partners.path, "--allow-loopback", "--store", "memory:", "--grace-period", "1"]
                + (turnedOff ? ["--no-background-priority"] : [])
        )
        defer { serve.stop() }
        #expect(try await fetchPage(port: serve.port).status == .ok)
        #expect(await eventually { local.server.requests.count == 1 })

        let names = try Self.threadNames(serve.process.processIdentifier)
        let background = names.filter { $0.contains("background-qos") }
        #expect(background.isEmpty == turnedOff, "\(names)")

        kill(serve.process.processIdentifier, SIGTERM)
        #expect(await eventually { !serve.process.isRunning })
        #expect(serve.process.terminationStatus == 0)
        try await local.stop()
    }
}
