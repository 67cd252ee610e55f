import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import PullSync
import PullSyncEdge
import PullSyncTesting
import Testing

/// Issue 8, hot reload over real HTTP: `POST /_pullsync/reload` (bearer token) swaps partners.d/
/// all or nothing; a bad manifest keeps the running partners and shows in metrics and health.
@Suite(.serialized) struct ReloadRouteTests {
    struct ReloadAnswer: Decodable {
        var result: String
        var partners_enabled: [String]
        var problems: [String]
    }

    struct HealthAnswer: Decodable {
        struct Reload: Decodable {
            var reloads: Int
            var failures: Int
            var last_succeeded: Bool?
            var last_problems: [String]
        }
        var partners_enabled: [String]
        var reload: Reload
    }

    func manifest(_ id: String, port: Int) -> String {
        """
        id: \(id)
        source_domain: \(id).example
        pull:
          url: https://\(id).partner.test:\(port)/\(id)/pull
          allowed_hosts: [\(id).partner.test]
          auth:
            bearer: { env: EDGE_TEST_TOKEN }
        """
    }

    @Test func reloadAddsAPartnerRefusesABadManifestAndRecovers() async throws {
        let harness = try await EdgeHarness.make(partnerDelay: .milliseconds(1))
        let folder = harness.scratch.appendingPathComponent("partners.d")
        let admin = fields([("Authorization", "Bearer \(harness.admin)")])
        try await harness.service.application.test(.live) { client in
            // Without the token: refused, nothing reloaded.
            #expect(try await client.execute(uri: "/_pullsync/reload", method: .post).status == .unauthorized)

            // Partner p1 is replaced by p7 (p7's host resolves nowhere: it is only listed).
            try FileManager.default.removeItem(at: folder.appendingPathComponent("p1.yaml"))
            try manifest("p7", port: harness.server.port).write(
                to: folder.appendingPathComponent("p7.yaml"),
                atomically: true,
                encoding: .utf8
            )
            let reloaded = try await client.execute(uri: "/_pullsync/reload", method: .post, headers: admin)
            #expect(reloaded.status == .ok)
            let answer = try JSONDecoder().decode(ReloadAnswer.self, from: Data(buffer: reloaded.body))
            #expect(answer.result == "reloaded")
            #expect(answer.partners_enabled.sorted() == ["p2", "p3", "p4", "p5", "p6", "p7"])

            // A manifest with two mistakes: refused, every problem at its line and column.
            let bad = folder.appendingPathComponent("bad.yaml")
            try "id: bad\nsource_domain: bad.example\npull:\n  url: http://bad.example/x\n  tiemout: 5s\n".write(
                to: bad,
                atomically: true,
                encoding: .utf8
            )
            let refused = try await client.execute(uri: "/_pullsync/reload", method: .post, headers: admin)
            #expect(refused.status == .unprocessableContent)
            let failure = try JSONDecoder().decode(ReloadAnswer.self, from: Data(buffer: refused.body))
            #expect(failure.result == "failed")
            #expect(failure.problems.count >= 2)
            #expect(failure.problems.allSatisfy { $0.hasPrefix(bad.path + ":") && $0.contains(": error: ") })
            #expect(failure.problems.contains { $0.hasPrefix(bad.path + ":5:3: error: unknown key 'pull.tiemout'") })
            // The running partners stayed.
            #expect(failure.partners_enabled.sorted() == ["p2", "p3", "p4", "p5", "p6", "p7"])

            // Without the token, only the status: degraded, since the last reload failed.
            let openHealth = try await client.execute(uri: "/_pullsync/health", method: .get)
            #expect(String(buffer: openHealth.body) == #"{"status":"degraded"}"#)
            let health = try await client.execute(uri: "/_pullsync/health", method: .get, headers: admin)
            let status = try JSONDecoder().decode(HealthAnswer.self, from: Data(buffer: health.body))
            #expect(status.partners_enabled.sorted() == ["p2", "p3", "p4", "p5", "p6", "p7"])
            #expect(status.reload.reloads == 1)
            #expect(status.reload.failures == 1)
            #expect(status.reload.last_succeeded == false)
            #expect(status.reload.last_problems == failure.problems)

            let metrics = try await client.execute(uri: "/_pullsync/metrics", method: .get, headers: admin)
            let text = String(buffer: metrics.body)
            #expect(text.contains("pullsync_reload_failures_total 1"))
            #expect(text.contains("pullsync_reloads_total 1"))
            #expect(text.contains("pullsync_reload_last_succeeded 0"))

            // Pages are served and the running partners called meanwhile.
            let page = try await client.execute(
                uri: "/after-reload",
                method: .get,
                headers: fields([("X-Forwarded-For", "203.0.113.77")])
            )
            #expect(page.status == .ok)
            #expect(await eventually { harness.server.requests.count == 5 })
            #expect(harness.server.requestCount(path: "/p1/pull") == 0)

            // Fixed: the next reload succeeds.
            try FileManager.default.removeItem(at: bad)
            let fixed = try await client.execute(uri: "/_pullsync/reload", method: .post, headers: admin)
            #expect(fixed.status == .ok)
            let after = try await client.execute(uri: "/_pullsync/metrics", method: .get, headers: admin)
            #expect(String(buffer: after.body).contains("pullsync_reload_last_succeeded 1"))
        }
        try await harness.close()
    }
}
