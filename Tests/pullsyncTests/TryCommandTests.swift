import Foundation
import PullSync
import PullSyncTesting
import PartnerSimulator
import Testing

/// `pullsync try`, spawned as a process, against a loopback HTTPS partner whose certificate (for `localhost`)
/// comes from a test CA passed with `--tls-ca-file`.
@Suite(.serialized) struct TryCommandTests {
    static let ec = TestPartners.edgeCookie(7)
    static let tokenVariable = "TRY_TOKEN"

    struct Report: Decodable {
        struct Request: Decodable {
            var method: String
            var url: String
            var headers: [String: String]
        }
        var partner: String
        var request: Request
        var status: Int?
        var outcome: String
        var uid: String?
        var elapsed_ms: Double
    }

    /// A partner server on the address `localhost` resolves to first (the transport pins that one), a
    /// `partners.d` with one manifest pointing at it, and the CA file; all removed afterwards.
    struct Setup {
        var server: PartnerServer
        var directory: URL
        var partnersDirectory: String
        var caFile: String
    }

    func withSetup(
        // Generous by default: a busy machine's TLS handshake is no partner fault.
        timeout: String? = "30s",
        tls: Bool = true,
        _ body: (Setup) async throws -> Void
    ) async throws {
        let ca = TestCertificateAuthority(commonName: "pullsync try tests CA")
        let localhost = try await SystemHostResolver().resolve(host: "localhost")
        let address = try #require(localhost.first { $0.isLoopback }, "localhost must resolve to loopback")
        let server = try await PartnerServer.start(
            tls: tls ? try ca.issue(dnsNames: ["localhost"]) : nil,
            host: address.description
        )
        let directory = try makeTemporaryDirectory()
        do {
            let partnersDirectory = directory.appendingPathComponent("partners.d")
            try FileManager.default.createDirectory(at: partnersDirectory, withIntermediateDirectories: true)
            var manifest = """
                id: trypartner
                name: Try Partner
                source_domain: try.example
                pull:
                  url: \(tls ? "https" : "http")://localhost:\(server.port)/pull
                  allowed_hosts: [localhost]
                  auth:
                    bearer: { env: \(Self.tokenVariable) }

                """
            if let timeout { manifest += "  timeout: \(timeout)\n" }
            manifest += """
                optout:
                  url: \(tls ? "https" : "http")://localhost:\(server.port)/optout
                  method: DELETE
                  auth:
                    bearer: { env: \(Self.tokenVariable) }

                """
            try Data(manifest.utf8).write(to: partnersDirectory.appendingPathComponent("trypartner.yaml"))
            let caFile = directory.appendingPathComponent("ca.pem").path
            try ca.writeCACertificate(to: caFile)
            try await body(
                Setup(server: server, directory: directory, partnersDirectory: partnersDirectory.path, caFile: caFile)
            )
        } catch {
            try? await server.shutdown()
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
        try await server.shutdown()
        try FileManager.default.removeItem(at: directory)
    }

    func runTry(
        _ setup: Setup,
        token: String?,
        partner: String = "trypartner",
        allowLoopback: Bool = true,
        trustCA: Bool = true,
        json: Bool = true,
        optOut: Bool = false
    ) async throws -> CLIResult {
        // A generous connect timeout (hidden option): on a busy machine a loopback TLS handshake can take
        // longer than the product's 1 s, which would read as the partner's `timeout`.
        var arguments = [
            "try", "--partners", setup.partnersDirectory, "--partner", partner, "--ec-id", Self.ec,
            "--connect-timeout", "30",
        ]
        if trustCA { arguments += ["--tls-ca-file", setup.caFile] }
        if allowLoopback { arguments.append("--allow-loopback") }
        if json { arguments.append("--json") }
        if optOut { arguments.append("--optout") }
        var environment: [String: String] = [:]
        if let token { environment[Self.tokenVariable] = token }
        return try await runPullSync(arguments, in: setup.directory, environment: environment)
    }

    func decode(_ result: CLIResult, sourceLocation: SourceLocation = #_sourceLocation) throws -> Report {
        #expect(result.status == 0, "stderr: \(result.stderr)", sourceLocation: sourceLocation)
        return try JSONDecoder().decode(Report.self, from: Data(result.stdout.utf8))
    }

    func expectNoToken(_ token: String, in result: CLIResult, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!result.stdout.contains(token), sourceLocation: sourceLocation)
        #expect(!result.stderr.contains(token), sourceLocation: sourceLocation)
    }

    @Test func uidOutcomeReportsTheRedactedRequestAndTheUID() async throws {
        try #require(ProcessInfo.processInfo.environment[Self.tokenVariable] == nil)
        try await withSetup { setup in
            setup.server.script(path: "/pull", .uid("try-uid-1"))
            let token = makeToken()
            let result = try await runTry(setup, token: token)
            let report = try decode(result)
            #expect(report.partner == "trypartner")
            #expect(report.request.method == "GET")
            #expect(report.request.url.hasPrefix("https://localhost:\(setup.server.port)/pull?"))
            #expect(report.request.url.contains("ec_id=\(Self.ec)"))
            #expect(report.request.headers["Authorization"] == "<redacted>")
            #expect(report.status == 200)
            #expect(report.outcome == "uid")
            #expect(report.uid == "try-uid-1")
            #expect(report.elapsed_ms >= 0)
            expectNoToken(token, in: result)

            // What the partner received: the real token, once.
            #expect(setup.server.requests.count == 1)
            let received = try #require(setup.server.requests.first)
            #expect(received.header("Authorization") == "Bearer \(token)")
            #expect(received.queryValue("ec_id") == Self.ec)
        }
    }

    @Test("--optout sends the opt-out request once and says what the outbox would make of the answer")
    func optOut() async throws {
        try await withSetup { setup in
            setup.server.script(path: "/optout", .respond(status: 404, headers: [], body: []))
            let token = makeToken()
            let result = try await runTry(setup, token: token, optOut: true)
            let report = try decode(result)
            #expect(report.request.method == "DELETE")
            #expect(report.request.url == "https://localhost:\(setup.server.port)/optout?ec_id=\(Self.ec)")
            #expect(report.request.headers["Authorization"] == "<redacted>")
            #expect(report.status == 404)
            #expect(report.outcome == "acknowledged", "404: the partner knows no such user")
            expectNoToken(token, in: result)
            #expect(setup.server.requests.map(\.path) == ["/optout"])
            #expect(setup.server.requests.first?.header("Authorization") == "Bearer \(token)")

            setup.server.script(path: "/optout", .respond(status: 503, headers: [], body: []))
            let text = try await runTry(setup, token: token, json: false, optOut: true)
            #expect(text.stdout.contains("DELETE https://localhost:\(setup.server.port)/optout?ec_id="))
            #expect(text.stdout.contains("outcome: retry (http_503)"), "\(text.stdout)")
        }
    }

    @Test func jsonHasNullsForStatusAndUIDWhenAbsent() async throws {
        // The stall never ends, so the call always times out; 5 s lets the request arrive first.
        try await withSetup(timeout: "5s") { setup in
            setup.server.script(path: "/pull", .headersThenStall(contentLength: nil))
            let token = makeToken()
            let result = try await runTry(setup, token: token)
            let report = try decode(result)
            #expect(report.outcome == "timeout")
            #expect(report.status == nil)
            #expect(report.uid == nil)
            #expect(result.stdout.contains(#""status":null"#))
            #expect(result.stdout.contains(#""uid":null"#))
            expectNoToken(token, in: result)
            #expect(setup.server.requests.count == 1)
        }
    }

    @Test(arguments: [
        (404, "not_found"),
        (500, "http_error"),
        (429, "http_error"),
    ])
    func statusOutcomesExitZero(status: Int, outcome: String) async throws {
        try await withSetup { setup in
            setup.server.script(path: "/pull", .status(status))
            let token = makeToken()
            let result = try await runTry(setup, token: token)
            let report = try decode(result)
            #expect(report.status == status)
            #expect(report.outcome == outcome)
            #expect(report.uid == nil)
            expectNoToken(token, in: result)
            #expect(setup.server.requests.count == 1)
        }
    }

    @Test func nullUIDExitsZero() async throws {
        try await withSetup { setup in
            setup.server.script(path: "/pull", .json(#"{"uid": null}"#))
            let report = try decode(try await runTry(setup, token: makeToken()))
            #expect(report.outcome == "null_uid")
            #expect(report.status == 200)
        }
    }

    @Test func withoutAllowLoopbackTheTargetIsRefusedAndNothingIsSent() async throws {
        try await withSetup { setup in
            setup.server.script(path: "/pull", .uid("must-not-be-read"))
            let token = makeToken()
            let result = try await runTry(setup, token: token, allowLoopback: false)
            let report = try decode(result)
            #expect(report.outcome == "refused_target")
            #expect(report.status == nil)
            #expect(report.uid == nil)
            #expect(report.request.headers["Authorization"] == "<redacted>")
            expectNoToken(token, in: result)
            #expect(setup.server.acceptedConnections == 0)
        }
    }

    @Test func withoutTheCAFileTheCertificateIsNotTrusted() async throws {
        try await withSetup { setup in
            setup.server.script(path: "/pull", .uid("must-not-be-read"))
            let token = makeToken()
            let result = try await runTry(setup, token: token, trustCA: false)
            let report = try decode(result)
            #expect(report.outcome == "tls_error")
            #expect(report.status == nil)
            expectNoToken(token, in: result)
            #expect(setup.server.requests.isEmpty)
        }
    }

    @Test func plainHTTPToLocalhostIsAllowedWithTheSwitch() async throws {
        try await withSetup(tls: false) { setup in
            setup.server.script(path: "/pull", .uid("plain-uid"))
            let token = makeToken()
            let result = try await runTry(setup, token: token)
            let report = try decode(result)
            #expect(report.request.url.hasPrefix("http://localhost:"))
            #expect(report.outcome == "uid")
            #expect(report.uid == "plain-uid")
            expectNoToken(token, in: result)
            #expect(setup.server.requests.first?.header("Authorization") == "Bearer \(token)")

            let refused = try decode(try await runTry(setup, token: token, allowLoopback: false))
            #expect(refused.outcome == "refused_target")
            #expect(setup.server.requests.count == 1)
        }
    }

    @Test func textOutputRedactsTheToken() async throws {
        try await withSetup { setup in
            setup.server.script(path: "/pull", .uid("text-uid"))
            let token = makeToken()
            let result = try await runTry(setup, token: token, json: false)
            #expect(result.status == 0, "stderr: \(result.stderr)")
            #expect(result.stdout.contains("Authorization: <redacted>"))
            #expect(result.stdout.contains("outcome: uid (uid text-uid)"))
            expectNoToken(token, in: result)
        }
    }

    @Test func unknownPartnerIsAClearError() async throws {
        try await withSetup { setup in
            let token = makeToken()
            let result = try await runTry(setup, token: token, partner: "nosuchpartner")
            #expect(result.exitedNormally)
            #expect(result.status != 0)
            #expect(result.stderr.contains("nosuchpartner"))
            #expect(result.stderr.contains("trypartner"), "the message lists the valid partners")
            expectNoToken(token, in: result)
            #expect(setup.server.acceptedConnections == 0)
        }
    }

    @Test func unsetTokenIsAClearErrorNamingTheReference() async throws {
        try #require(ProcessInfo.processInfo.environment[Self.tokenVariable] == nil)
        try await withSetup { setup in
            let result = try await runTry(setup, token: nil)
            #expect(result.exitedNormally)
            #expect(result.status != 0)
            #expect(result.stderr.contains("trypartner"))
            #expect(result.stderr.contains("env:\(Self.tokenVariable)"))
            #expect(result.stderr.contains("not set"))
            #expect(setup.server.acceptedConnections == 0)
        }
    }
}

/// A fresh, distinctive token.
private func makeToken() -> String { "tok-\(UUID().uuidString)" }
