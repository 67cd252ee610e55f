import AsyncHTTPClient
import Foundation
import NIOCore
import PartnerSimulator
import PullSyncTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 19 through `pullsync serve` as a real process, with real cookies: a `Sec-GPC` page
/// withdraws the EC and each partner with an `optout:` endpoint is called exactly once, also when
/// the edge is restarted (SIGTERM) while the outbox is not empty, and when the store was down at
/// the moment of the withdrawal.
@Suite(.serialized) struct ServeOptOutTests {
    /// Partners p1 and p2 with an opt-out endpoint on `optOutPort`, p3 without; pulls from `pulls`.
    static func writeManifests(to partners: URL, pulls: PartnerServer, optOutPort: Int) throws {
        try FileManager.default.createDirectory(at: partners, withIntermediateDirectories: true)
        for id in ["p1", "p2", "p3"] {
            pulls.script(path: "/\(id)/pull", .uid("\(id)-uid"))
            let optOut =
                id == "p3"
                ? ""
                : "optout:\n  url: http://127.0.0.1:\(optOutPort)/\(id)/optout\n  method: POST\n"
            try """
            id: \(id)
            source_domain: \(id).example
            pull:
              url: http://127.0.0.1:\(pulls.port)/\(id)/pull
              allowed_hosts: [127.0.0.1]
              timeout: 30s
            \(optOut)
            """.write(to: partners.appendingPathComponent("\(id).yaml"), atomically: true, encoding: .utf8)
        }
    }

    /// The edge as a browser and an operator see it.
    struct Edge {
        let serve: ServeProcess
        let token: String
        let client = HTTPClient.shared
        var base: String { "http://127.0.0.1:\(serve.port)" }

        /// A page view; returns the EC cookie the edge set, if any.
        @discardableResult
        func page(ec: String? = nil, gpc: Bool = false) async throws -> String? {
            var request = HTTPClientRequest(url: base + "/article")
            if let ec { request.headers.add(name: "Cookie", value: "ts-ec=\(ec)") }
            if gpc { request.headers.add(name: "Sec-GPC", value: "1") }
            let response = try await client.execute(request, timeout: .seconds(30))
            _ = try await response.body.collect(upTo: 1 << 20)
            #expect(response.status == .ok)
            let cookie = response.headers["set-cookie"].first { $0.hasPrefix("ts-ec=") }
            return cookie.map { String($0.dropFirst("ts-ec=".count).prefix { $0 != ";" }) }
        }

        func admin(_ path: String) async throws -> String {
            var request = HTTPClientRequest(url: base + "/_pullsync/" + path)
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            let response = try await client.execute(request, timeout: .seconds(30))
            return String(buffer: try await response.body.collect(upTo: 1 << 20))
        }

        /// A new browser whose EC ends up with the three partners' UIDs.
        func browserWithUIDs() async throws -> String {
            let ec = try #require(try await page())
            #expect(await eventually {
                let ids = (try? await admin("ids/\(ec)")) ?? ""
                return ["p1-uid", "p2-uid", "p3-uid"].allSatisfy(ids.contains)
            })
            return ec
        }
    }

    static func optOutCalls(_ server: PartnerServer, _ id: String, ec: String) -> Int {
        server.requests.filter { request in
            request.path == "/\(id)/optout" && request.method == "POST"
                && request.queryItems.contains { $0.name == "ec_id" && $0.value == ec }
        }.count
    }

    @Test("SIGTERM with opt-outs in the outbox: the next start delivers each once")
    func restartWithAFullOutbox() async throws {
        let pulls = try await PartnerServer.start()
        // The opt-out endpoints' address, with nobody listening on it yet: every attempt fails.
        // Held until the endpoints start: a port merely freed was once given to another test's
        // server, whose 404 acknowledged both opt-outs (CI, the whole suite running beside).
        let held = try HeldPort()
        defer { held.release() }
        let optOutPort = held.port
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let partners = directory.appendingPathComponent("partners.d")
        try Self.writeManifests(to: partners, pulls: pulls, optOutPort: optOutPort)
        let token = "admin-\(UUID().uuidString)"
        let arguments = [
            "--partners", partners.path, "--allow-loopback",
            "--store", "sqlite:" + directory.appendingPathComponent("store.db").path,
        ]
        let environment = ["PULLSYNC_ADMIN_TOKEN": token, "PULLSYNC_EC_SECRET": "optout-test-secret-0123456789"]

        let first = Edge(serve: try await ServeProcess(arguments, environment: environment), token: token)
        let ec = try await first.browserWithUIDs()
        try await first.page(ec: ec, gpc: true)
        // Withdrawn, two opt-outs owed, each tried (and failed: nobody listens).
        #expect(await eventually { ((try? await first.admin("ids/\(ec)")) ?? "").contains("\"withdrawn\":true") })
        #expect(await eventually {
            let metrics = (try? await first.admin("metrics")) ?? ""
            return metrics.contains("pullsync_optouts_total{partner=\"p1\",result=\"retry\"}")
                && metrics.contains("pullsync_optouts_total{partner=\"p2\",result=\"retry\"}")
        })
        #expect(try await first.admin("optouts") == #"{"pending":2,"withdrawals_pending":0}"#)
        first.serve.process.terminate()
        first.serve.process.waitUntilExit()
        #expect(first.serve.process.terminationStatus == 0)

        // The partners' endpoints are up; a new process on the same store.
        held.release()
        let optOuts = try await PartnerServer.start(port: optOutPort)
        optOuts.script(path: "/p1/optout", .respond(status: 200, headers: [], body: []))
        optOuts.script(path: "/p2/optout", .respond(status: 204, headers: [], body: []))
        let second = Edge(serve: try await ServeProcess(arguments, environment: environment), token: token)
        defer { second.serve.stop() }
        #expect(await eventually { (try? await second.admin("optouts")) == #"{"pending":0,"withdrawals_pending":0}"# })
        #expect(Self.optOutCalls(optOuts, "p1", ec: ec) == 1)
        #expect(Self.optOutCalls(optOuts, "p2", ec: ec) == 1)
        #expect(optOuts.requests.count == 2, "p3 has no endpoint")
        // Another GPC page and more time: nobody is told twice.
        try await second.page(ec: ec, gpc: true)
        #expect(await eventually {
            ((try? await second.admin("metrics")) ?? "").contains("pullsync_withdrawals_total{result=\"already_withdrawn\"}")
        })
        second.serve.process.terminate()
        second.serve.process.waitUntilExit()
        #expect(optOuts.requests.count == 2)
        try await optOuts.shutdown()
        try await pulls.shutdown()
    }

    @Test(
        "A withdrawal while PostgreSQL is down is kept, and the partner told once the store is back",
        .enabled(if: ServeOptOutTests.postgresServerInstalled)
    )
    func storeDownAtTheWithdrawal() async throws {
        let pulls = try await PartnerServer.start()
        let optOuts = try await PartnerServer.start()
        optOuts.script(path: "/p1/optout", .respond(status: 200, headers: [], body: []))
        optOuts.script(path: "/p2/optout", .respond(status: 200, headers: [], body: []))
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let partners = directory.appendingPathComponent("partners.d")
        try Self.writeManifests(to: partners, pulls: pulls, optOutPort: optOuts.port)
        // A cluster of its own: this test kills it.
        let cluster = "/tmp/pullsync-pg-\(getpid())-optout-\(UInt32.random(in: 0...UInt32.max))"
        let reserved = try HeldPort()
        let port = reserved.port
        reserved.release()
        let url = try await Self.postgres("start", cluster, "\(port)", "\(getpid())")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        defer { _ = try? Self.postgresNow("stop", cluster) }
        let token = "admin-\(UUID().uuidString)"
        let edge = Edge(
            serve: try await ServeProcess(
                ["--partners", partners.path, "--allow-loopback", "--store", url],
                environment: ["PULLSYNC_ADMIN_TOKEN": token, "PULLSYNC_EC_SECRET": "optout-test-secret-0123456789"]
            ),
            token: token
        )
        defer { edge.serve.stop() }
        let ec = try await edge.browserWithUIDs()

        _ = try await Self.postgres("kill", cluster)
        try await edge.page(ec: ec, gpc: true)
        #expect(await eventually { (try? await edge.admin("optouts")) == #"{"pending":null,"withdrawals_pending":1}"# })
        #expect(optOuts.requests.isEmpty)

        _ = try await Self.postgres("restart", cluster)
        #expect(await eventually { (try? await edge.admin("optouts")) == #"{"pending":0,"withdrawals_pending":0}"# })
        #expect(try await edge.admin("ids/\(ec)").contains("\"withdrawn\":true"))
        // Should a call be missing, what the edge made of each (an opt-out settles only on an
        // answer), what the servers saw, and its log: this failed once in CI, p2 uncalled.
        let p1Calls = Self.optOutCalls(optOuts, "p1", ec: ec)
        let p2Calls = Self.optOutCalls(optOuts, "p2", ec: ec)
        let calls = optOuts.requests.count
        var comment = Comment(rawValue: "")
        if p1Calls != 1 || p2Calls != 1 || calls != 2 {
            let metrics = ((try? await edge.admin("metrics")) ?? "").split(separator: "\n")
                .filter { $0.hasPrefix("pullsync_optouts_total{") || $0.hasPrefix("pullsync_withdrawals_total{") }
            comment = Comment(
                rawValue: "metrics: \(metrics)\nopt-out server: \(optOuts.requests.map(\.uri))\n"
                    + "pull server: \(pulls.requests.map(\.uri))\nlog:\n\(edge.serve.log.value)"
            )
        }
        #expect(p1Calls == 1, comment)
        #expect(p2Calls == 1, comment)
        #expect(calls == 2, comment)
        try await optOuts.shutdown()
        try await pulls.shutdown()
    }

    static var postgresServerInstalled: Bool {
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        return versions.contains { FileManager.default.isExecutableFile(atPath: "/usr/lib/postgresql/\($0)/bin/initdb") }
    }

    /// Runs `scripts/test-postgres` with `arguments`; its standard output.
    static func postgres(_ arguments: String...) async throws -> String {
        let process = Process()
        process.executableURL = packageRoot.appendingPathComponent("scripts/test-postgres")
        process.arguments = arguments
        let result = try await runToCompletion(process)
        guard result.status == 0 else {
            throw CLIError(message: "test-postgres \(arguments[0]) failed: \(String(decoding: result.stderr, as: UTF8.self))")
        }
        return String(decoding: result.stdout, as: UTF8.self)
    }

    /// The same, from a `defer` (no `await` there).
    static func postgresNow(_ arguments: String...) throws {
        let process = Process()
        process.executableURL = packageRoot.appendingPathComponent("scripts/test-postgres")
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
    }
}
