import AsyncHTTPClient
import Foundation
import PullSyncTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `pullsync serve` as a real process: SIGHUP reloads partners.d/ all or nothing.
@Suite(.serialized) struct ServeReloadTests {
    func manifest(_ id: String) -> String {
        """
        id: \(id)
        source_domain: \(id).example
        pull:
          url: https://localhost:9/\(id)
          allowed_hosts: [localhost]
        """
    }

    @Test func sighupReloadsRefusesABadManifestWithItsPositionAndKeepsServing() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let partners = directory.appendingPathComponent("partners.d")
        try FileManager.default.createDirectory(at: partners, withIntermediateDirectories: true)
        try manifest("first").write(
            to: partners.appendingPathComponent("first.yaml"),
            atomically: true,
            encoding: .utf8
        )

        let serve = try await ServeProcess(["--partners", partners.path, "--allow-loopback", "--store", "memory:"])
        defer { serve.stop() }
        let process = serve.process
        let collector = serve.log
        let port = serve.port

        // A bad manifest: refused with its position, the service keeps running and serving.
        let bad = partners.appendingPathComponent("bad.yaml")
        try "id: bad\nsource_domain: bad.example\npull:\n  url: https://localhost:9/x\n  tiemout: 5s\n".write(
            to: bad,
            atomically: true,
            encoding: .utf8
        )
        kill(process.processIdentifier, SIGHUP)
        #expect(await eventually { collector.value.contains("partner reload failed") })
        #expect(collector.value.contains("\(bad.path):5:3: error: unknown key 'pull.tiemout'"))
        #expect(process.isRunning)
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let page = try await client.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/p"), timeout: .seconds(10))
        #expect(page.status == .ok)

        // Fixed, and a partner added: the next SIGHUP puts them in place.
        try FileManager.default.removeItem(at: bad)
        try manifest("second").write(
            to: partners.appendingPathComponent("second.yaml"),
            atomically: true,
            encoding: .utf8
        )
        kill(process.processIdentifier, SIGHUP)
        #expect(await eventually { collector.value.contains("partners reloaded") })
        #expect(collector.value.contains("enabled=first,second"))
        let again = try await client.execute(
            HTTPClientRequest(url: "http://127.0.0.1:\(port)/p"),
            timeout: .seconds(10)
        )
        #expect(again.status == .ok)
        try await client.shutdown()

        kill(process.processIdentifier, SIGTERM)
        #expect(await eventually { !process.isRunning })
        #expect(process.terminationStatus == 0)
    }
}
