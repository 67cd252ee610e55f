import AsyncHTTPClient
import Foundation
import PullSyncTesting
import PartnerSimulator
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `pullsync serve --no-pull-sync`: the same pages, without pull sync (the benchmarks' baseline).
@Suite(.serialized) struct ServeNoPullSyncTests {
    @Test(arguments: [false, true])
    func pagesAreServedAndOnlyPullSyncIssuesAnEC(noPullSync: Bool) async throws {
        let server = try await PartnerServer.start()
        server.scriptDefault(.uid("u-1"))
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
            [
                "--partners", partners.path, "--allow-loopback", "--store", "memory:", "--grace-period", "1",
            ] + (noPullSync ? ["--no-pull-sync"] : [])
        )
        defer { serve.stop() }
        let edgePort = serve.port
        let process = serve.process

        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let response = try await client.execute(
            HTTPClientRequest(url: "http://127.0.0.1:\(edgePort)/page"),
            timeout: .seconds(10)
        )
        _ = try await response.body.collect(upTo: 1 << 20)
        try await client.shutdown()
        #expect(response.status == .ok)
        let issued = response.headers["set-cookie"].contains { $0.hasPrefix("ts-ec=") }
        #expect(issued == !noPullSync)
        if !noPullSync {
            // With pull sync on, the issued EC's partner is called.
            #expect(await eventually { !server.requests.isEmpty })
            #expect(server.requests.count == 1)
        }

        kill(process.processIdentifier, SIGTERM)
        #expect(await eventually { !process.isRunning })
        #expect(process.terminationStatus == 0)
        // Nothing was sent to the partner in all that time with pull sync off.
        if noPullSync { #expect(server.requests.isEmpty) }
        try await server.shutdown()
    }
}
