import Foundation
import HTTPTypes
import HummingbirdTesting
import InMemoryLogging
import Logging
import PullSync
import PullSyncEdge
import PullSyncTesting
import PartnerSimulator
import Synchronization
import Testing

/// PostgreSQL killed under a running edge service, then started again.
@Suite("PostgreSQL outage", .enabled(if: TestPostgres.serverBinariesInstalled), .serialized)
struct PostgresOutageTests {
    @Test("Pages are served while PostgreSQL is down; pulls are skipped, counted, logged once, and resume on their own")
    func killAndRestart() async throws {
        // A cluster of its own: this test kills it.
        let cluster = try TestCluster.make(name: "outage")
        let url = try await cluster.start()
        let partners = FileManager.default.temporaryDirectory.appendingPathComponent("pullsync-outage-\(UUID())")
        try FileManager.default.createDirectory(at: partners, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: partners) }
        let server = try await PartnerServer.start()
        server.script(path: "/pull", .uid("uid-1"))
        try """
        id: p1
        source_domain: p1.example
        pull:
          url: http://127.0.0.1:\(server.port)/pull
          allowed_hosts: [127.0.0.1]
          timeout: 30s
        """.write(to: partners.appendingPathComponent("p1.yaml"), atomically: true, encoding: .utf8)
        var handler = InMemoryLogHandler()
        handler.logLevel = .warning
        let logs = handler
        let service = try await EdgeService.make(
            configuration: EdgeServiceConfiguration(
                partnersDirectory: partners.path,
                port: 0,
                store: url,
                allowLoopback: true,
                clientIPHeader: "X-Forwarded-For",
                // Tests count what the dispatcher decides: it never gives way to a busy machine.
                cpuPressure: nil
            ),
            environment: [
                "PULLSYNC_ADMIN_TOKEN": "admin-token", "PULLSYNC_EC_SECRET": "outage-test-secret-0123456789",
            ],
            connectTimeout: .seconds(30),  // generous, for a busy machine
            logger: Logger(label: "outage", factory: { _ in handler })
        )
        let visitors = Atomic<Int>(0)
        @Sendable func newVisitorPage(_ client: any TestClientProtocol) async throws -> HTTPResponse.Status {
            let visitor = visitors.add(1, ordering: .relaxed).newValue
            return try await client.execute(
                uri: "/article",
                method: .get,
                headers: [HTTPField.Name("X-Forwarded-For")!: "198.51.100.\(visitor)"]
            ).status
        }

        try await service.application.test(.live) { client in
            // Up: a new visitor's page leads to a pull and a stored UID.
            #expect(try await newVisitorPage(client) == .ok)
            #expect(await eventually { service.pullSync.dispatcher.statistics.stored == 1 })

            try await cluster.run("kill")
            var statuses: [HTTPResponse.Status] = []
            for _ in 0..<20 { statuses.append(try await newVisitorPage(client)) }
            #expect(statuses == Array(repeating: .ok, count: 20), "pages are served with the store down")
            #expect(await eventually { service.pullSync.dispatcher.statistics.processed == 21 })
            #expect(server.requestCount(path: "/pull") == 1, "no partner call without the store")
            let metrics = try await client.execute(
                uri: "/_pullsync/metrics",
                method: .get,
                headers: [.authorization: "Bearer admin-token"]
            )
            let text = String(buffer: metrics.body)
            let skipped = text.split(separator: "\n").first {
                $0.hasPrefix("pullsync_request_skips_total") && $0.contains("store_unavailable")
            }
            #expect(skipped.flatMap { Int($0.split(separator: " ").last ?? "") } == 20, "every skip counted")
            let storeWarnings = logs.entries.filter { $0.message.description.contains("skipping pull sync") }
            #expect(storeWarnings.count == 1, "20 failures, one log line per interval")

            // Back: pulls resume without restarting anything.
            _ = try await cluster.run("restart")
            #expect(
                try await eventually {
                    _ = try await newVisitorPage(client)
                    return service.pullSync.dispatcher.statistics.stored >= 2
                }
            )
            #expect(server.requestCount(path: "/pull") >= 2)
        }
        try await server.shutdown()
        _ = try? await cluster.run("stop")
    }
}
