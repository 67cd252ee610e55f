import PartnerAdapterKit
import Foundation
import PullSync
import PullSyncTesting
import PartnerSimulator

/// Partners answering from one loopback HTTPS server (a throwaway CA), at `https://localhost:PORT/{id}/pull`:
/// as kernel `Partner` values, and as manifests for `pullsync serve`.
struct LoopbackPartners {
    let server: PartnerServer
    let ids: [String]
    /// The CA certificate (PEM) to trust, in a scratch folder deleted by ``shutdown()``.
    let caFile: String
    let scratch: URL

    static func start(count: Int, prefix: String = "p") async throws -> LoopbackPartners {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent(
            "pullsync-bench-\(UUID().uuidString)"
        )
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        let authority = TestCertificateAuthority(commonName: "pullsync bench CA")
        let caFile = scratch.appendingPathComponent("ca.pem").path
        try authority.writeCACertificate(to: caFile)
        let server = try await PartnerServer.start(tls: try authority.issue(dnsNames: ["localhost"]))
        let ids = (0..<count).map { "\(prefix)\($0)" }
        for id in ids { server.script(path: "/\(id)/pull", .uid("\(id)-uid")) }
        return LoopbackPartners(server: server, ids: ids, caFile: caFile, scratch: scratch)
    }

    func path(_ id: String) -> String { "/\(id)/pull" }

    func script(_ id: String, _ behavior: PartnerServer.Behavior) { server.script(path: path(id), behavior) }

    /// Kernel partners, bearer token `token-{id}`.
    func partners(timeout: Duration = .seconds(5), rateLimit: RateLimitPolicy = RateLimitPolicy()) -> [Partner] {
        ids.map { id in
            let configuration = HTTPPullAdapter.Configuration(
                url: PartnerURL(scheme: "https", host: "localhost", port: server.port, path: path(id)),
                auth: .bearer(.environment("TOKEN"))
            )
            return Partner(
                id: id,
                sourceDomain: "\(id).example",
                policy: PartnerPolicy(
                    allowedHosts: AllowedHosts(["localhost"]),
                    rateLimit: rateLimit,
                    timeout: timeout
                ),
                adapter: HTTPPullAdapter(configuration: configuration, token: Secret("token-\(id)"))
            )
        }
    }

    /// One manifest per partner in a new folder; the token is read from `BENCH_TOKEN`.
    func writeManifests(timeout: String) throws -> String {
        let folder = scratch.appendingPathComponent("partners.d-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for id in ids {
            try """
            id: \(id)
            source_domain: \(id).example
            pull:
              url: https://localhost:\(server.port)\(path(id))
              allowed_hosts: [localhost]
              timeout: \(timeout)
              auth:
                bearer: { env: BENCH_TOKEN }
            """.write(to: folder.appendingPathComponent("\(id).yaml"), atomically: true, encoding: .utf8)
        }
        return folder.path
    }

    func shutdown() async {
        try? await server.shutdown()
        try? FileManager.default.removeItem(at: scratch)
    }
}
