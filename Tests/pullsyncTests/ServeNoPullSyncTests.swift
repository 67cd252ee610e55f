import AsyncHTTPClient
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
        """.write(to: partners.appendingPathComponent("local.yaml"), atomically: true, encoding: .utf8)

        let process = Process()
        process.executableURL = try pullsyncBinary()
        process.arguments =
            [
                "serve", "--partners", partners.path, "--listen", "127.0.0.1:0", "--allow-loopback",
                "--store", "memory:", "--grace-period", "1",
            ] + (noPullSync ? ["--no-pull-sync"] : [])
        let errors = Pipe()
        let collector = Collector()
        errors.fileHandleForReading.readabilityHandler = { handle in collector.append(handle.availableData) }
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer {
            if process.isRunning { process.terminate() }
            errors.fileHandleForReading.readabilityHandler = nil
        }
        var port: Int?
        for _ in 0..<1000 where port == nil {
            port = collector.value.firstMatch(of: #/address=127\.0\.0\.1:(\d+)/#).flatMap { Int($0.output.1) }
            if port == nil { try await Task.sleep(for: .milliseconds(10)) }
        }
        let edgePort = try #require(port, "\(collector.value)")

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
            for _ in 0..<1000 where server.requests.isEmpty { try await Task.sleep(for: .milliseconds(10)) }
            #expect(server.requests.count == 1)
        }

        kill(process.processIdentifier, SIGTERM)
        for _ in 0..<1000 where process.isRunning { try await Task.sleep(for: .milliseconds(10)) }
        #expect(process.terminationStatus == 0)
        // Nothing was sent to the partner in all that time with pull sync off.
        if noPullSync { #expect(server.requests.isEmpty) }
        try await server.shutdown()
    }
}
