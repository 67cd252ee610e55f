import Foundation
import PullSync
import PullSyncTesting
import PartnerSimulator
import Testing

extension AllTransportTests {
    /// Tokens go on the wire and nowhere else: not in logs (kernel, transport, AsyncHTTPClient), not in
    /// results, reports or errors, over a run that produces every outcome class.
    @Suite("Transport: secrets")
    struct TransportSecretTests {
        @Test("no outcome class leaks a token into logs or printouts")
        func tokensNeverLeak() async throws {
            let stranger = TestCertificateAuthority(commonName: "a stranger's CA")
            let untrustedHost = "untrusted.partner.test"
            let untrustedCertificate = try stranger.issue(dnsNames: [untrustedHost])
            try await withPartnerServer(certificate: untrustedCertificate) { untrusted in
                try await withPartnerServer { server in
                    let scripts: [(id: String, behavior: PartnerServer.Behavior)] = [
                        ("uid", .uid("leak-test-uid")),
                        ("notfound", .status(404)),
                        ("nulluid", .json(#"{"uid": null}"#)),
                        ("httperror", .status(500)),
                        ("redirect", .redirect(status: 302, location: "https://foreign.example/")),
                        ("timeout", .headersThenStall(contentLength: nil)),
                        ("reset", .reset),
                        ("closed", .closeWithoutResponse),
                        ("toolarge", .large(byteCount: 256 << 10, declareLength: false)),
                        ("declaredlarge", .large(byteCount: 256 << 10, declareLength: true)),
                        ("invalid", .json("not json")),
                        ("headertoken", .uid("header-token-uid")),
                    ]
                    var partners: [Partner] = []
                    var tokens: [String: String] = [:]
                    for (id, behavior) in scripts {
                        server.script(path: "/\(id)", behavior)
                        let token = makeToken()
                        tokens[id] = token
                        let isHeaderToken = id == "headertoken"
                        partners.append(
                            makePartner(
                                id,
                                path: "/\(id)",
                                port: server.port,
                                token: token,
                                timeout: id == "timeout" ? .milliseconds(500) : .seconds(30),
                                headers: isHeaderToken
                                    ? [.init(name: "X-Api-Key", value: template("key={token}"))] : [],
                                auth: isHeaderToken ? .headerTemplate(.environment("HEADER_KEY")) : nil
                            )
                        )
                    }
                    let extra: [(id: String, host: String, port: Int)] = [
                        ("tls", untrustedHost, untrusted.port),
                        ("refused", "private.partner.test", 443),
                        ("unresolved", "nowhere.partner.test", 443),
                    ]
                    for (id, host, port) in extra {
                        let token = makeToken()
                        tokens[id] = token
                        partners.append(makePartner(id, path: "/\(id)", host: host, port: port, token: token))
                    }
                    let resolver = StaticHostResolver([
                        partnerHost: [loopbackV4],
                        untrustedHost: [loopbackV4],
                        "private.partner.test": [ip("10.0.0.5")],
                    ])
                    try await withHarness(try TransportHarness(partners: partners, resolver: resolver)) { harness in
                        let report = await harness.process()
                        #expect(report.results.count == partners.count)
                        let outcomes = Dictionary(
                            uniqueKeysWithValues: report.results.map { ($0.partnerID, $0.outcome) }
                        )
                        #expect(outcomes["uid"] == .uid("leak-test-uid"))
                        #expect(outcomes["notfound"] == .notFound)
                        #expect(outcomes["nulluid"] == .nullUID)
                        #expect(outcomes["httperror"] == .httpError(status: 500))
                        #expect(outcomes["redirect"] == .httpError(status: 302))
                        #expect(outcomes["timeout"] == .timeout)
                        #expect(outcomes["reset"] == .transportError)
                        #expect(outcomes["closed"] == .transportError)
                        #expect(outcomes["toolarge"] == .tooLarge)
                        #expect(outcomes["declaredlarge"] == .tooLarge)
                        #expect(outcomes["invalid"] == .invalidBody)
                        #expect(outcomes["headertoken"] == .uid("header-token-uid"))
                        #expect(outcomes["tls"] == .tlsError)
                        #expect(outcomes["refused"] == .refusedTarget)
                        #expect(outcomes["unresolved"] == .transportError)
                        #expect(Set(report.results.map(\.outcome.outcomeClass)) == Set(OutcomeClass.allCases))

                        // Again, one partner at a time, as `pullsync try` does.
                        var probes: [ProbeResult] = []
                        for partner in partners {
                            let probe = try await harness.kernel.probe(
                                partnerID: partner.id,
                                edgeCookie: EdgeCookie(unchecked: TestPartners.edgeCookie(2))
                            )
                            probes.append(try #require(probe))
                        }
                        #expect(Set(probes.map(\.outcome.outcomeClass)) == Set(OutcomeClass.allCases))

                        // The tokens were really sent (so their absence below means something).
                        let sent = server.requests.map { $0.header("Authorization") ?? $0.header("X-Api-Key") ?? "" }
                        #expect(sent.contains("Bearer \(tokens["uid"]!)"))
                        #expect(sent.contains("key=\(tokens["headertoken"]!)"))

                        let logs = harness.allLogs
                        #expect(!logs.isEmpty)
                        // Warnings were logged for the failures (so the check covers error text too).
                        #expect(logs.contains { $0.level == .warning })
                        for token in tokens.values {
                            for entry in logs {
                                #expect(!renderedText(of: entry).contains(token), "log: \(entry.message)")
                            }
                            for result in report.results {
                                #expect(!everyPrintout(of: result).contains(token), "result of \(result.partnerID)")
                            }
                            #expect(!everyPrintout(of: report).contains(token))
                            for probe in probes {
                                #expect(!everyPrintout(of: probe).contains(token), "probe of \(probe.partnerID)")
                                #expect(!probe.request.description.contains(token))
                                #expect(!probe.request.renderedURL.contains(token))
                                for header in probe.request.redactedHeaders {
                                    #expect(!header.value.contains(token))
                                }
                            }
                        }
                        // The redacted printouts still say where the secret went.
                        let uidProbe = try #require(probes.first { $0.partnerID == "uid" })
                        #expect(uidProbe.request.description.contains("Authorization: <redacted>"))
                    }
                }
            }
        }
    }
}
