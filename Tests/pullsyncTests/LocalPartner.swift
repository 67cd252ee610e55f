import AsyncHTTPClient
import Foundation
import PartnerSimulator

/// A plain-HTTP loopback partner, `local` (source domain `local.example`), and a fresh folder
/// whose `partners.d` holds its manifest: what a test runs `pullsync serve --allow-loopback` on.
struct LocalPartner {
    let server: PartnerServer
    /// Removed by ``stop()``.
    let directory: URL
    var partners: URL { directory.appendingPathComponent("partners.d") }

    /// Starts the server, answering every path with `behavior`, and writes the manifest.
    static func start(answering behavior: PartnerServer.Behavior) async throws -> LocalPartner {
        let server = try await PartnerServer.start()
        server.scriptDefault(behavior)
        let local = LocalPartner(server: server, directory: try makeTemporaryDirectory())
        try FileManager.default.createDirectory(at: local.partners, withIntermediateDirectories: true)
        try """
        id: local
        source_domain: local.example
        pull:
          url: http://localhost:\(server.port)/pull
          allowed_hosts: [localhost]
          timeout: 30s
        """.write(to: local.partners.appendingPathComponent("local.yaml"), atomically: true, encoding: .utf8)
        return local
    }

    /// Shuts the server down and removes the folder.
    func stop() async throws {
        try? FileManager.default.removeItem(at: directory)
        try await server.shutdown()
    }
}

/// `GET path` from the edge on `port`, its body read.
func fetchPage(port: Int, path: String = "/page") async throws -> HTTPClientResponse {
    let client = HTTPClient(eventLoopGroupProvider: .singleton)
    do {
        let response = try await client.execute(
            HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)"),
            timeout: .seconds(10)
        )
        _ = try await response.body.collect(upTo: 1 << 20)
        try await client.shutdown()
        return response
    } catch {
        try? await client.shutdown()
        throw error
    }
}
