import AsyncHTTPClient
import Foundation
import PartnerSimulator
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
        let server = try await PartnerServer.start()
        // Answered only after the test: the call is in flight while the test looks at the threads
        // (libdispatch lets an idle worker go after a few seconds).
        server.scriptDefault(.delayed(.seconds(3600), .uid("u-1")))
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let partners = directory.appendingPathComponent("partners.d")
        try FileManager.default.createDirectory(at: partners, withIntermediateDirectories: true)
        try """
        id: local
        source_domain: local.example
        pull:
          url: http://localhost:\(server.port)/pull
          allowed_hosts: [localhost]
          timeout: 30s
        """.write(to: partners.appendingPathComponent("local.yaml"), atomically: true, encoding: .utf8)

        let serve = try await ServeProcess(
            ["--partners", partners.path, "--allow-loopback", "--store", "memory:", "--grace-period", "1"]
                + (turnedOff ? ["--no-background-priority"] : [])
        )
        defer { serve.stop() }
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let response = try await client.execute(
            HTTPClientRequest(url: "http://127.0.0.1:\(serve.port)/page"),
            timeout: .seconds(10)
        )
        _ = try await response.body.collect(upTo: 1 << 20)
        try await client.shutdown()
        #expect(response.status == .ok)
        #expect(await eventually { server.requests.count == 1 })

        let names = try Self.threadNames(serve.process.processIdentifier)
        let background = names.filter { $0.contains("background-qos") }
        #expect(background.isEmpty == turnedOff, "\(names)")

        kill(serve.process.processIdentifier, SIGTERM)
        #expect(await eventually { !serve.process.isRunning })
        #expect(serve.process.terminationStatus == 0)
        try await server.shutdown()
    }
}
