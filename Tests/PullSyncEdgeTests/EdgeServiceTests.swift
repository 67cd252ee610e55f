import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import PullSync
import PullSyncEdge
import PullSyncTesting
import PartnerSimulator
import Testing

/// The reference edge service over real sockets: HummingbirdTesting's live server for the
/// edge, an HTTPS `PartnerServer` with a throwaway CA for six partners.
struct EdgeHarness {
    static let partnerIDs = ["p1", "p2", "p3", "p4", "p5", "p6"]
    let scratch: URL
    let server: PartnerServer
    let service: EdgeService

    /// - Parameters:
    ///   - partnerDelay: each partner's latency before it answers.
    ///   - partnerGate: when given, every answer is held until it opens instead (for a test that
    ///     must act while calls are surely in flight).
    static func make(
        partnerDelay: Duration = .milliseconds(150),
        partnerGate: ResponseGate? = nil
    ) async throws -> EdgeHarness {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent(
            "pullsync-edge-\(UUID().uuidString)"
        )
        let partners = scratch.appendingPathComponent("partners.d")
        try FileManager.default.createDirectory(at: partners, withIntermediateDirectories: true)
        let authority = TestCertificateAuthority()
        let hosts = partnerIDs.map { "\($0).partner.test" }
        let server = try await PartnerServer.start(tls: try authority.issue(dnsNames: hosts))
        for id in partnerIDs {
            try """
            id: \(id)
            source_domain: \(id).example
            pull:
              url: https://\(id).partner.test:\(server.port)/\(id)/pull
              allowed_hosts: [\(id).partner.test]
              auth:
                bearer: { env: EDGE_TEST_TOKEN }
              timeout: 30s
            """.write(to: partners.appendingPathComponent("\(id).yaml"), atomically: true, encoding: .utf8)
            let answer = PartnerServer.Behavior.uid("\(id)-uid")
            server.script(path: "/\(id)/pull", partnerGate.map { .held($0, answer) } ?? .delayed(partnerDelay, answer))
        }
        let caFile = scratch.appendingPathComponent("ca.pem").path
        try authority.writeCACertificate(to: caFile)
        let harnessTokens = (admin: "admin-\(UUID().uuidString)", partner: "tok-\(UUID().uuidString)")
        let loopback = IPAddress("127.0.0.1")!
        let service = try await EdgeService.make(
            configuration: EdgeServiceConfiguration(
                partnersDirectory: partners.path,
                port: 0,
                store: "memory:",
                tlsCAFile: caFile,
                allowLoopback: true,
                clientIPHeader: "X-Forwarded-For",
                // Tests count what the dispatcher decides: it never gives way to a busy machine.
                cpuPressure: nil
            ),
            environment: [
                "PULLSYNC_ADMIN_TOKEN": harnessTokens.admin, "EDGE_TEST_TOKEN": harnessTokens.partner,
                "PULLSYNC_EC_SECRET": "edge-test-secret-0123456789",
            ],
            hostResolver: StaticHostResolver(Dictionary(uniqueKeysWithValues: hosts.map { ($0, [loopback]) })),
            // Generous: on a busy machine a loopback TLS handshake can outlast the product's 1 s.
            connectTimeout: .seconds(30),
            logger: Logger(label: "edge-test", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        return EdgeHarness(scratch: scratch, server: server, service: service, tokens: harnessTokens)
    }

    init(scratch: URL, server: PartnerServer, service: EdgeService, tokens: (admin: String, partner: String)) {
        self.scratch = scratch
        self.server = server
        self.service = service
        self.adminTokenValue = tokens.admin
        self.partnerTokenValue = tokens.partner
    }

    private let adminTokenValue: String
    private let partnerTokenValue: String
    var admin: String { adminTokenValue }
    var partnerSecret: String { partnerTokenValue }

    func close() async throws {
        try await server.shutdown()
        try? FileManager.default.removeItem(at: scratch)
    }
}

func fields(_ pairs: [(String, String)]) -> HTTPFields {
    var result = HTTPFields()
    for (name, value) in pairs { result.append(HTTPField(name: HTTPField.Name(name)!, value: value)) }
    return result
}

@Suite(.serialized) struct EdgeServiceTests {
    @Test func oneOrganicRequestCallsAllSixPartnersNeverMoreThanThreeAtOnce() async throws {
        // Every answer held until three calls are in flight: the window is seen full, however busy
        // the machine.
        let gate = ResponseGate()
        let harness = try await EdgeHarness.make(partnerGate: gate)
        try await harness.service.application.test(.live) { client in
            let response = try await client.execute(
                uri: "/news/today",
                method: .get,
                headers: fields([("X-Forwarded-For", "203.0.113.50")])
            )
            #expect(response.status == .ok)
            let setCookie = try #require(response.headers[.setCookie])
            let ec = String(setCookie.dropFirst("ts-ec=".count).prefix { $0 != ";" })
            #expect(DefaultEdgeCookieFormat().parse(ec) != nil)
            #expect(await eventually { harness.server.requestsInProgress == 3 })
            gate.open()
            #expect(
                await eventually { harness.service.pullSync.dispatcher.statistics.stored == 6 },
                "\(harness.service.pullSync.dispatcher.statistics.outcomes)"
            )
            #expect(harness.server.requests.count == 6)
            #expect(harness.server.peakConcurrentRequests == 3)
            for request in harness.server.requests {
                #expect(request.queryValue("ec_id") == ec)
                #expect(request.header("Authorization") == "Bearer \(harness.partnerSecret)")
                #expect(request.queryItems.count == 1)  // only ec_id: no client IP, nothing else
            }

            // The admin API returns what was learned, with synced_at.
            let ids = try await client.execute(
                uri: "/_pullsync/ids/\(ec)",
                method: .get,
                headers: fields([("Authorization", "Bearer \(harness.admin)")])
            )
            #expect(ids.status == .ok)
            struct IDs: Decodable {
                struct Entry: Decodable {
                    var uid: String
                    var synced_at: Int64
                }
                var ec_id: String
                var partners: [String: Entry]
            }
            let decoded = try JSONDecoder().decode(IDs.self, from: Data(buffer: ids.body))
            #expect(decoded.ec_id == ec)
            #expect(decoded.partners.count == 6)
            #expect(decoded.partners["p3.example"]?.uid == "p3-uid")
            let now = Int64(Date().timeIntervalSince1970)
            #expect(decoded.partners.values.allSatisfy { abs($0.synced_at - now) < 120 })
        }
        try await harness.close()
    }

    @Test(arguments: [
        ("/auction", [(String, String)]()),
        ("/sync", []),
        ("/identify", []),
        ("/admin/x", []),
        ("/_pullsync/health", []),
        ("/page", [("Sec-GPC", "1")]),
        ("/page", [("Cookie", "ts-consent=0")]),
        ("/page", [("Cookie", "ts-ec=\(String(repeating: "ab", count: 32)).ZZZZZZ")]),
    ])
    func requestsThatMustNeverCallPartners(path: String, extra: [(String, String)]) async throws {
        let harness = try await EdgeHarness.make(partnerDelay: .milliseconds(1))
        try await harness.service.application.test(.live) { client in
            _ = try await client.execute(
                uri: path,
                method: path == "/auction" ? .post : .get,
                headers: fields([("X-Forwarded-For", "203.0.113.51")] + extra)
            )
            // Excluded routes never reach the dispatcher; organic ones are decided (skipped) first.
            if path == "/page" {
                #expect(
                    await eventually {
                        let statistics = harness.service.pullSync.dispatcher.statistics
                        return statistics.processed + statistics.skippedAtSubmit >= 1
                    }
                )
            } else {
                #expect(
                    harness.service.pullSync.dispatcher.statistics.enqueued
                        + harness.service.pullSync.dispatcher.statistics.skippedAtSubmit == 0
                )
            }
            #expect(harness.server.requests.isEmpty, "\(path) \(extra)")
            // …while a plain page view through the same service does reach all six: the silence
            // above is the rule at work, not a broken pipeline.
            _ = try await client.execute(
                uri: "/control",
                method: .get,
                headers: fields([("X-Forwarded-For", "203.0.113.52")])
            )
            #expect(await eventually { harness.server.requests.count == 6 })
        }
        try await harness.close()
    }

    @Test func theAdminAPIRefusesMissingOrWrongTokensAndHealthIsOpen() async throws {
        let harness = try await EdgeHarness.make()
        try await harness.service.application.test(.live) { client in
            let ec = String(repeating: "cd", count: 32) + ".Abc123"
            let missing = try await client.execute(uri: "/_pullsync/ids/\(ec)", method: .get)
            #expect(missing.status == .unauthorized)
            let wrong = try await client.execute(
                uri: "/_pullsync/metrics",
                method: .get,
                headers: fields([("Authorization", "Bearer not-the-token")])
            )
            #expect(wrong.status == .unauthorized)
            let unknown = try await client.execute(
                uri: "/_pullsync/ids/\(ec)",
                method: .get,
                headers: fields([("Authorization", "Bearer \(harness.admin)")])
            )
            #expect(unknown.status == .notFound)
            let metrics = try await client.execute(
                uri: "/_pullsync/metrics",
                method: .get,
                headers: fields([("Authorization", "Bearer \(harness.admin)")])
            )
            #expect(metrics.status == .ok)
            let text = String(buffer: metrics.body)
            #expect(text.contains("pullsync_decisions_total"))
            #expect(!text.contains(harness.partnerSecret))
            // Health answers anyone, with the status alone: partner names are for operators.
            let open = try await client.execute(uri: "/_pullsync/health", method: .get)
            #expect(open.status == .ok)
            #expect(String(buffer: open.body) == #"{"status":"ok"}"#)
            let wrongHealth = try await client.execute(
                uri: "/_pullsync/health",
                method: .get,
                headers: fields([("Authorization", "Bearer not-the-token")])
            )
            #expect(String(buffer: wrongHealth.body) == #"{"status":"ok"}"#)
            let health = try await client.execute(
                uri: "/_pullsync/health",
                method: .get,
                headers: fields([("Authorization", "Bearer \(harness.admin)")])
            )
            #expect(health.status == .ok)
            let details = String(buffer: health.body)
            #expect(details.contains("\"partners_enabled\":[\"p1\",\"p2\",\"p3\",\"p4\",\"p5\",\"p6\"]"))
            #expect(details.contains("\"status\":\"ok\""))
        }
        try await harness.close()
    }

    @Test func openHealthSaysDegradedWithoutNamingThePartnerOrItsSecret() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("health-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        // A partner whose token is not set: disabled, and the service degraded.
        try """
        id: secretive
        source_domain: secretive.example
        pull:
          url: https://uid.secretive.example/x
          allowed_hosts: [uid.secretive.example]
          auth:
            bearer: { env: SECRETIVE_PARTNER_TOKEN }
        """.write(to: folder.appendingPathComponent("secretive.yaml"), atomically: true, encoding: .utf8)
        let service = try await EdgeService.make(
            configuration: EdgeServiceConfiguration(partnersDirectory: folder.path, port: 0, store: "memory:"),
            environment: ["PULLSYNC_ADMIN_TOKEN": "admin-t"],
            logger: Logger(label: "edge-test", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        try await service.application.test(.live) { client in
            let open = try await client.execute(uri: "/_pullsync/health", method: .get)
            #expect(open.status == .ok)
            #expect(String(buffer: open.body) == #"{"status":"degraded"}"#)
            let details = try await client.execute(
                uri: "/_pullsync/health",
                method: .get,
                headers: fields([("Authorization", "Bearer admin-t")])
            )
            let text = String(buffer: details.body)
            #expect(text.contains("\"status\":\"degraded\""))
            #expect(text.contains("secretive"))
            #expect(text.contains("SECRETIVE_PARTNER_TOKEN"))
        }
    }

    @Test func adminDeleteWithdrawsAnECWhoseCallsAreInFlightAndNothingIsStored() async throws {
        // The answers wait for the withdrawal (a gate, not a latency the machine could outlast).
        let gate = ResponseGate()
        let harness = try await EdgeHarness.make(partnerGate: gate)
        try await harness.service.application.test(.live) { client in
            let admin = fields([("Authorization", "Bearer \(harness.admin)")])
            // A page view issues an EC; its six calls go out, three at a time, each answered
            // with a UID once the EC is withdrawn.
            let page = try await client.execute(
                uri: "/news",
                method: .get,
                headers: fields([("X-Forwarded-For", "203.0.113.70")])
            )
            let setCookie = try #require(page.headers[.setCookie])
            let ec = String(setCookie.dropFirst("ts-ec=".count).prefix { $0 != ";" })
            #expect(await eventually { harness.server.requests.count >= 3 })

            let deleted = try await client.execute(uri: "/_pullsync/ids/\(ec)", method: .delete, headers: admin)
            #expect(deleted.status == .noContent)
            gate.open()

            // Every partner answers afterwards with a UID; none is stored.
            #expect(await eventually { harness.service.pullSync.dispatcher.statistics.processed == 1 })
            let statistics = harness.service.pullSync.dispatcher.statistics
            #expect(statistics.outcomes["uid"] == 6)
            #expect(statistics.stored == 0)
            let ids = try await client.execute(uri: "/_pullsync/ids/\(ec)", method: .get, headers: admin)
            #expect(ids.status == .ok)
            struct IDs: Decodable {
                var partners: [String: [String: Int64]]
                var withdrawn: Bool
            }
            let decoded = try JSONDecoder().decode(IDs.self, from: Data(buffer: ids.body))
            #expect(decoded.partners.isEmpty)
            #expect(decoded.withdrawn)

            // Later page views with that EC call no one.
            _ = try await client.execute(
                uri: "/news",
                method: .get,
                headers: fields([("X-Forwarded-For", "203.0.113.70"), ("Cookie", "ts-ec=\(ec)")])
            )
            #expect(await eventually { harness.service.pullSync.dispatcher.statistics.processed == 2 })
            #expect(harness.server.requests.count == 6)

            let metrics = try await client.execute(uri: "/_pullsync/metrics", method: .get, headers: admin)
            let text = String(buffer: metrics.body)
            #expect(text.contains("pullsync_withdrawals_total{result=\"withdrawn\"} 1"))
            #expect(text.contains("pullsync_writes_total{partner=\"p1\",result=\"withdrawn\"} 1"))
            #expect(text.contains("pullsync_request_skips_total{reason=\"consent\"} 1"))
        }
        try await harness.close()
    }

    @Test func adminDeleteAnswers404ForUnknownOrMalformedECsAndNeedsTheToken() async throws {
        let harness = try await EdgeHarness.make()
        try await harness.service.application.test(.live) { client in
            let admin = fields([("Authorization", "Bearer \(harness.admin)")])
            let unknown = String(repeating: "ef", count: 32) + ".Abc123"
            #expect(
                try await client.execute(uri: "/_pullsync/ids/\(unknown)", method: .delete, headers: admin).status
                    == .notFound
            )
            #expect(
                try await client.execute(uri: "/_pullsync/ids/not-an-ec", method: .delete, headers: admin).status
                    == .notFound
            )
            #expect(try await client.execute(uri: "/_pullsync/ids/\(unknown)", method: .delete).status == .unauthorized)
            let wrong = fields([("Authorization", "Bearer wrong")])
            #expect(
                try await client.execute(uri: "/_pullsync/ids/\(unknown)", method: .delete, headers: wrong).status
                    == .unauthorized
            )
            // An EC the service issued and recorded is known: 204, and again 204 (already withdrawn).
            let page = try await client.execute(
                uri: "/",
                method: .get,
                headers: fields([("X-Forwarded-For", "203.0.113.71")])
            )
            let ec = String(try #require(page.headers[.setCookie]).dropFirst("ts-ec=".count).prefix { $0 != ";" })
            #expect(await eventually { harness.service.pullSync.dispatcher.statistics.processed == 1 })
            #expect(
                try await client.execute(uri: "/_pullsync/ids/\(ec)", method: .delete, headers: admin).status
                    == .noContent
            )
            #expect(
                try await client.execute(uri: "/_pullsync/ids/\(ec)", method: .delete, headers: admin).status
                    == .noContent
            )
        }
        try await harness.close()
    }

    @Test func aBrowserThatNowDeniesConsentHasItsECWithdrawn() async throws {
        let harness = try await EdgeHarness.make(partnerDelay: .milliseconds(1))
        try await harness.service.application.test(.live) { client in
            let page = try await client.execute(
                uri: "/",
                method: .get,
                headers: fields([("X-Forwarded-For", "203.0.113.72")])
            )
            let ec = String(try #require(page.headers[.setCookie]).dropFirst("ts-ec=".count).prefix { $0 != ";" })
            #expect(await eventually { harness.service.pullSync.dispatcher.statistics.stored == 6 })
            _ = try await client.execute(
                uri: "/",
                method: .get,
                headers: fields([("X-Forwarded-For", "203.0.113.72"), ("Cookie", "ts-ec=\(ec); ts-consent=0")])
            )
            let hash = String(ec.prefix(64))
            #expect(
                try await eventually { try await harness.service.pullSync.store.record(ecHash: hash)?.withdrawn == true }
            )
            #expect(try await harness.service.pullSync.store.record(ecHash: hash)?.partners.isEmpty == true)
        }
        try await harness.close()
    }

    @Test func withoutAnAdminTokenTheAdminAPIIsNotThere() async throws {
        let service = try await EdgeService.make(
            configuration: EdgeServiceConfiguration(partnersDirectory: "/nonexistent", port: 0, store: "memory:"),
            environment: [:],
            logger: Logger(label: "edge-test", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        try await service.application.test(.live) { client in
            let ids = try await client.execute(
                uri: "/_pullsync/ids/x",
                method: .get,
                headers: fields([("Authorization", "Bearer anything")])
            )
            #expect(ids.status == .notFound)
            #expect(try await client.execute(uri: "/_pullsync/metrics", method: .get).status == .notFound)
            // Health is open; a partners folder that doesn't exist is a problem: degraded.
            let health = try await client.execute(uri: "/_pullsync/health", method: .get)
            #expect(health.status == .ok)
            #expect(String(buffer: health.body) == #"{"status":"degraded"}"#)
            #expect(try await client.execute(uri: "/", method: .get).status == .ok)
        }
    }
}

@Suite struct OriginProxyTests {
    @Test func organicPagesAreProxiedFromTheOriginAndStillIssueAnEC() async throws {
        let origin = try await PartnerServer.start()
        origin.script(
            path: "/articles/1",
            .respond(
                status: 201,
                headers: [("Content-Type", "text/html"), ("X-Origin", "yes")],
                body: Array("<p>from origin</p>".utf8)
            )
        )
        let service = try await EdgeService.make(
            configuration: EdgeServiceConfiguration(
                partnersDirectory: "/nonexistent",
                port: 0,
                store: "memory:",
                origin: "http://127.0.0.1:\(origin.port)",
                clientIPHeader: "X-Forwarded-For"
            ),
            environment: [:],
            logger: Logger(label: "edge-test", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        try await service.application.test(.live) { client in
            let response = try await client.execute(
                uri: "/articles/1?x=2",
                method: .get,
                headers: fields([("X-Forwarded-For", "203.0.113.60"), ("Connection", "keep-alive")])
            )
            #expect(response.status == .created)
            #expect(String(buffer: response.body) == "<p>from origin</p>")
            #expect(response.headers[HTTPField.Name("X-Origin")!] == "yes")
            #expect(response.headers[.setCookie]?.hasPrefix("ts-ec=") == true)
            let seen = try #require(origin.requests.first)
            #expect(seen.uri == "/articles/1?x=2")
            #expect(seen.header("X-Forwarded-For") == "203.0.113.60, 127.0.0.1")

            let missing = try await client.execute(uri: "/nothing-here", method: .get)
            #expect(missing.status == .notFound)  // the origin's answer, passed through
        }
        try await origin.shutdown()
    }

    @Test func anOriginThatIsDownGives502() async throws {
        let origin = try await PartnerServer.start()
        let port = origin.port
        try await origin.shutdown()
        let service = try await EdgeService.make(
            configuration: EdgeServiceConfiguration(
                partnersDirectory: "/nonexistent",
                port: 0,
                store: "memory:",
                origin: "http://127.0.0.1:\(port)"
            ),
            environment: [:],
            logger: Logger(label: "edge-test", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        try await service.application.test(.live) { client in
            let response = try await client.execute(uri: "/", method: .get)
            #expect(response.status == .badGateway)
        }
    }
}
