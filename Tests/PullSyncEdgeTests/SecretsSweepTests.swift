import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import InMemoryLogging
import Logging
import PullSync
import PullSyncEdge
import PullSyncTesting
import PartnerSimulator
import Testing

/// Issue 8, secrets: the edge service under partner faults (errors, resets, timeouts, pauses, a
/// secret that doesn't resolve, a failed reload, wrong admin tokens), with distinctive token
/// values; every log line (all levels), metric, admin answer and error is searched for them.
@Suite(.serialized) struct SecretsSweepTests {
    @Test func noSecretValueAppearsInLogsMetricsAdminAnswersOrErrors() async throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent(
            "pullsync-sweep-\(UUID().uuidString)"
        )
        let folder = scratch.appendingPathComponent("partners.d")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let marker = UUID().uuidString.prefix(8)
        let secrets = [
            "OK_TOKEN": "sweep-ok-\(marker)-Zq81", "FAIL_TOKEN": "sweep-fail-\(marker)-Yw27",
            "RESET_TOKEN": "sweep-reset-\(marker)-Xe55", "SLOW_TOKEN": "sweep-slow-\(marker)-Vr09",
            "PAUSE_TOKEN": "sweep-pause-\(marker)-Ut64",
        ]
        let admin = "sweep-admin-\(marker)-Ts33"
        let ecSecret = "sweep-ec-secret-\(marker)-Sr11"
        let authority = TestCertificateAuthority()
        let ids = ["ok", "fail", "reset", "slow", "pause", "missing"]
        let hosts = ids.map { "\($0).partner.test" }
        let server = try await PartnerServer.start(tls: try authority.issue(dnsNames: hosts))
        // A generous timeout (a busy machine's TLS handshake is no fault); only the slow partner's
        // is short, below its latency, so that its calls always time out.
        func write(_ id: String, auth: String, timeout: String = "30s", extra: String = "") throws {
            try """
            id: \(id)
            source_domain: \(id).example
            pull:
              url: https://\(id).partner.test:\(server.port)/\(id)
              allowed_hosts: [\(id).partner.test]
              auth:
                \(auth)
              timeout: \(timeout)\(extra)
            """.write(to: folder.appendingPathComponent("\(id).yaml"), atomically: true, encoding: .utf8)
        }
        try write("ok", auth: "bearer: { env: OK_TOKEN }")
        try write("fail", auth: "bearer: { env: FAIL_TOKEN }")
        try write("reset", auth: "header_token: { env: RESET_TOKEN }", extra: "\n  headers:\n    X-Key: \"{token}\"")
        try write("slow", auth: "bearer: { env: SLOW_TOKEN }", timeout: "300ms")
        try write("pause", auth: "bearer: { env: PAUSE_TOKEN }")
        try write("missing", auth: "bearer: { env: NOT_SET_ANYWHERE }")
        server.script(path: "/ok", .uid("u-ok"))
        server.script(path: "/fail", .status(500))
        server.script(path: "/reset", .reset)
        server.script(path: "/slow", .delayed(.seconds(2), .uid("late")))  // a latency beyond its timeout
        server.script(path: "/pause", .respond(status: 429, headers: [("Retry-After", "30")], body: []))
        let caFile = scratch.appendingPathComponent("ca.pem").path
        try authority.writeCACertificate(to: caFile)

        var handler = InMemoryLogHandler()
        handler.logLevel = .trace
        let logs = handler
        let loopback = IPAddress("127.0.0.1")!
        let service = try await EdgeService.make(
            configuration: EdgeServiceConfiguration(
                partnersDirectory: folder.path,
                port: 0,
                store: "memory:",
                tlsCAFile: caFile,
                allowLoopback: true,
                clientIPHeader: "X-Forwarded-For",
                // Tests count what the dispatcher decides: it never gives way to a busy machine.
                cpuPressure: nil
            ),
            environment: secrets.merging(["PULLSYNC_ADMIN_TOKEN": admin, "PULLSYNC_EC_SECRET": ecSecret]) { $1 },
            hostResolver: StaticHostResolver(Dictionary(uniqueKeysWithValues: hosts.map { ($0, [loopback]) })),
            // Generous: on a busy machine a loopback TLS handshake can outlast the product's 1 s.
            connectTimeout: .seconds(30),
            logger: Logger(label: "sweep", factory: { _ in logs })
        )

        var seen = try await service.application.test(.live) { client in
            var seen: [String] = []
            let bearer = fields([("Authorization", "Bearer \(admin)")])
            var ecs: [String] = []
            for n in 0..<12 {
                let page = try await client.execute(
                    uri: "/page/\(n)",
                    method: .get,
                    headers: fields([("X-Forwarded-For", "203.0.113.\(n + 1)")])
                )
                seen.append(String(buffer: page.body) + "\(page.headers)")
                if let cookie = page.headers[.setCookie] {
                    ecs.append(String(cookie.dropFirst(6).prefix { $0 != ";" }))
                }
            }
            #expect(
                await eventually { service.pullSync.dispatcher.statistics.processed == 12 && server.requestsInProgress == 0 }
            )
            // A failed reload (a literal token in a manifest, and a bad key), then the admin API,
            // with right and wrong tokens.
            try
                "id: bad\nsource_domain: bad.example\npull:\n  url: https://bad.partner.test/x\n  allowed_hosts: [bad.partner.test]\n  auth:\n    bearer: sweep-literal-\(marker)\n  tiemout: 1s\n"
                .write(to: folder.appendingPathComponent("bad.yaml"), atomically: true, encoding: .utf8)
            var answers = [
                try await client.execute(uri: "/_pullsync/reload", method: .post, headers: bearer),
                try await client.execute(uri: "/_pullsync/health", method: .get),
                try await client.execute(uri: "/_pullsync/metrics", method: .get, headers: bearer),
                try await client.execute(
                    uri: "/_pullsync/metrics",
                    method: .get,
                    headers: fields([("Authorization", "Bearer \(admin)x")])
                ),
                try await client.execute(uri: "/_pullsync/ids/\(ecs.first ?? "")", method: .get, headers: bearer),
            ]
            answers.append(
                try await client.execute(uri: "/_pullsync/ids/\(ecs.last ?? "")", method: .delete, headers: bearer)
            )
            #expect(answers[0].status == .unprocessableContent)
            #expect(answers[2].status == .ok)
            #expect(answers[3].status == .unauthorized)
            for answer in answers { seen.append(String(buffer: answer.body) + "\(answer.headers)") }
            return seen
        }
        // The rendered text of every log line, at every level, with metadata and errors.
        for entry in logs.entries {
            var text = "\(entry.level) \(entry.message) \(entry.metadata)"
            if let error = entry.error { text += " \(error) \(String(reflecting: error))" }
            seen.append(text)
        }
        seen.append(String(decoding: service.metrics.emitToBuffer(), as: UTF8.self))

        let everything = seen.joined(separator: "\n")
        for (name, value) in secrets {
            #expect(!everything.contains(value), "\(name)'s value leaked")
        }
        #expect(!everything.contains(admin), "the admin token leaked")
        #expect(!everything.contains(ecSecret), "the EC secret leaked")
        #expect(!everything.contains("sweep-literal-\(marker)"), "a literal token in a manifest was echoed")
        // Controls: the faults happened, the logs are not empty, and the partners did get their tokens.
        #expect(logs.entries.count > 20)
        #expect(everything.contains("NOT_SET_ANYWHERE"), "the unresolved reference is named")
        #expect(everything.contains("partner reload failed"))
        #expect(server.requests.contains { $0.header("Authorization") == "Bearer \(secrets["OK_TOKEN"]!)" })
        #expect(server.requests.contains { $0.header("X-Key") == secrets["RESET_TOKEN"]! })
        let outcomes = service.pullSync.dispatcher.statistics.outcomes
        for outcome in ["uid", "http_error", "transport_error", "timeout"] {
            #expect(outcomes[outcome, default: 0] > 0, "\(outcome): \(outcomes)")
        }
        try await server.shutdown()
    }
}
