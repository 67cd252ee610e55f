import Foundation
import PullSyncTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `pullsync serve --no-pull-sync`: the same pages, without pull sync (the benchmarks' baseline).
@Suite(.serialized) struct ServeNoPullSyncTests {
    @Test(arguments: [false, true])
    func pagesAreServedAndOnlyPullSyncIssuesAnEC(noPullSync: Bool) async throws {
        let local = try await LocalPartner.start(answering: .uid("u-1"))
        let server = local.server
        let serve = try await ServeProcess(
            [
                "--partners", local.partners.path, "--allow-loopback", "--store", "memory:", "--grace-period", "1",
            ] + (noPullSync ? ["--no-pull-sync"] : [])
        )
        defer { serve.stop() }
        let process = serve.process

        let response = try await fetchPage(port: serve.port)
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
        try await local.stop()
    }
}
