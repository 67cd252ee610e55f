import AsyncHTTPClient
import Foundation
import PartnerSimulator

/// A loopback partner, `local` (source domain `local.example`), and a fresh folder whose
/// `partners.d` holds its manifest: what a test runs `pullsync serve --allow-loopback` on. Plain
/// HTTP, or HTTPS with a certificate from a throwaway CA whose certificate is ``caFile``.
struct LocalPartner {
    let server: PartnerServer
    /// Removed by ``stop()``.
    let directory: URL
    var partners: URL { directory.appendingPathComponent("partners.d") }
    /// The CA's certificate, for `--tls-ca-file`, when the partner speaks HTTPS.
    let caFile: String?

    /// Starts the server, answering every path with `behavior` (over HTTPS with a certificate
    /// from `certificateAuthority`, if given), and writes the manifest.
    static func start(
        answering behavior: PartnerServer.Behavior,
        certificateAuthority: TestCertificateAuthority? = nil
    ) async throws -> LocalPartner {
        let server = try await PartnerServer.start(tls: try certificateAuthority?.issue(dnsNames: ["localhost"]))
        server.scriptDefault(behavior)
        let directory = try makeTemporaryDirectory()
        let caFile = try certificateAuthority.map { authority in
            let path = directory.appendingPathComponent("ca.pem").path
            try authority.writeCACertificate(to: path)
            return path
        }
        let local = LocalPartner(server: server, directory: directory, caFile: caFile)
        try FileManager.default.createDirectory(at: local.partners, withIntermediateDirectories: true)
        try """
        id: local
        source_domain: local.example
        pull:
          url: \(caFile == nil ? "http" : "https")://localhost:\(server.port)/pull
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
