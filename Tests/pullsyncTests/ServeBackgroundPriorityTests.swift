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
        // Answered only after the test: calls stay in flight.
        let local = try await LocalPartner.start(answering: .delayed(.seconds(3600), .uid("u-1")))
        let serve = try await ServeProcess(
            ["--partners", local.partners.path, "--allow-loopback", "--store", "memory:", "--grace-period", "1"]
                + (turnedOff ? ["--no-background-priority"] : [])
        )
        defer { serve.stop() }
        let pid = serve.process.processIdentifier
        func backgroundThreads() throws -> [String] {
            try Self.threadNames(pid).filter { $0.contains("background-qos") }
        }

        if turnedOff {
            // Once the call has reached the partner, the work that made it has run: on no
            // background thread, as none was ever started.
            #expect(try await fetchPage(port: serve.port).status == .ok)
            #expect(await eventually { local.server.requests.count == 1 })
            let names = try Self.threadNames(pid)
            #expect(!names.contains { $0.contains("background-qos") }, "\(names)")
        } else {
            // libdispatch lets an idle worker go after a few seconds: each look follows a new
            // browser's page, whose pull sync starts new work on such a thread.
            let seen = try await eventually {
                _ = try await fetchPage(port: serve.port)
                return try !backgroundThreads().isEmpty
            }
            #expect(seen)
            // The thread shows as soon as a request's work starts; its call reaches the partner after.
            #expect(await eventually { !local.server.requests.isEmpty })
        }

        kill(serve.process.processIdentifier, SIGTERM)
        #expect(await eventually { !serve.process.isRunning })
        #expect(serve.process.terminationStatus == 0)
        try await local.stop()
    }
}
