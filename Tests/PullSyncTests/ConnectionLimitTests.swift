import Foundation
import Logging
import PartnerSimulator
import PullSync
import PullSyncTesting
import ServiceLifecycle
import ServiceLifecycleTestKit
import Testing

/// The transport's connections per host follow the kernel's caps: every call the kernel admits to
/// slow partners is on the wire at once, none waits in the connection pool with its deadline
/// running (issue 17; before, 32 connections per host served a per-partner cap of 64, and the
/// calls beyond 32 timed out waiting and opened the circuit of a partner that was only slow).
@Suite struct ConnectionLimitTests {
    @Test("Every call the caps admit reaches two partners sharing a host at once, beyond the old 32 connections")
    func everyAdmittedCallHasAConnection() async throws {
        let cap = 24  // per partner; two partners on one host: 48 calls in flight to it
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("connections-\(UUID().uuidString)")
        let partners = scratch.appendingPathComponent("partners.d")
        try FileManager.default.createDirectory(at: partners, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let authority = TestCertificateAuthority()
        let host = "slow.partner.test"
        let server = try await PartnerServer.start(tls: try authority.issue(dnsNames: [host]))
        // Answers only after the test is over: every call stays in flight (up to its 30 s timeout,
        // the most a manifest allows).
        for id in ["slow1", "slow2"] {
            server.script(path: "/\(id)/pull", .delayed(.seconds(3600), .uid("late")))
            try """
            id: \(id)
            source_domain: \(id).example
            pull:
              url: https://\(host):\(server.port)/\(id)/pull
              allowed_hosts: [\(host)]
              auth:
                bearer: { env: SLOW_TOKEN }
              timeout: 30s
            """.write(to: partners.appendingPathComponent("\(id).yaml"), atomically: true, encoding: .utf8)
        }
        let caFile = scratch.appendingPathComponent("ca.pem").path
        try authority.writeCACertificate(to: caFile)

        let pullSync = try await PullSyncService(
            configuration: .init(
                partnersDirectory: partners.path,
                store: "memory:",
                pullSync: PullSyncConfiguration(
                    maxInFlightCalls: 128,
                    maxInFlightPerPartner: cap,
                    allowLoopback: true,
                    shutdownGracePeriod: .zero
                ),
                transport: HTTPPullTransport.Configuration(
                    additionalTrustRootFiles: [caFile],
                    // Generous: on a busy machine a loopback TLS handshake can take a while.
                    connectTimeout: .seconds(60),
                    resolver: StaticHostResolver([host: [IPAddress("127.0.0.1")!]])
                ),
                reloadsOnHangup: false
            ),
            environment: ["SLOW_TOKEN": "t", "PULLSYNC_EC_SECRET": "connection-limit-secret"],
            logger: Logger(label: "connections", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await pullSync.run() }
                for n in 1...cap {
                    let result = pullSync.submit(
                        OrganicRequest(
                            path: "/",
                            edgeCookie: TestPartners.edgeCookie(n),
                            ecIssuedOnThisRequest: true,
                            consent: .granted
                        )
                    )
                    #expect(result == .enqueued)
                }
                #expect(
                    await eventually { server.requestsInProgress == 2 * cap },
                    "in progress: \(server.requestsInProgress)"
                )
                // Nothing timed out or failed while they were all waiting on the partner.
                #expect(pullSync.dispatcher.statistics.outcomes.isEmpty)
                trigger.triggerGracefulShutdown()
                try await group.next()
            }
        }
        #expect(server.peakConcurrentRequests == 2 * cap)
        try await server.shutdown()
    }
}
