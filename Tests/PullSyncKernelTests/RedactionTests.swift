import InMemoryLogging
import Logging
import PullSyncKernel
import PartnerAdapterKit
import PullSyncTesting
import Testing

/// Spec "Behaviour" 6: tokens never appear in logs, errors or debug output.
@Suite("Redaction")
struct RedactionTests {
    static let token = "s3cr3t-T0KEN-value"

    /// Everything a developer might print `value` with.
    static func printouts(of value: some Any) -> [String] {
        var dumped = ""
        dump(value, to: &dumped)
        return [
            String(describing: value),
            String(reflecting: value),
            "\(value)",
            dumped,
            Mirror(reflecting: value).children.map { "\($0.label ?? ""): \($0.value)" }.joined(separator: ", "),
        ]
    }

    @Test("A Secret prints as <redacted> through every printing path")
    func secret() {
        let secret = Secret(Self.token)

        #expect(secret.description == "<redacted>")
        #expect(secret.debugDescription == "Secret(<redacted>)")
        #expect("\(secret)" == "<redacted>")
        #expect(String(reflecting: secret) == "Secret(<redacted>)")
        #expect(Mirror(reflecting: secret).children.isEmpty)
        for printout in Self.printouts(of: secret) { #expect(!printout.contains(Self.token), "\(printout)") }
        for printout in Self.printouts(of: [secret]) { #expect(!printout.contains(Self.token), "\(printout)") }
        #expect(secret.reveal() == Self.token)
    }

    @Test("Partners and adapters holding a token never print it")
    func holders() {
        let partner = TestPartners.partner("acme", token: Secret(Self.token))
        for printout in Self.printouts(of: partner) + Self.printouts(of: partner.adapter) {
            #expect(!printout.contains(Self.token), "\(printout)")
        }
    }

    /// A request built with the token as bearer and inside a header template.
    static func builtRequest() throws -> PullRequest {
        let partner = httpPartner(
            "acme",
            headers: [item("X-Api-Key", "key={token}"), item("X-Partner", "{partner_id}")],
            auth: .bearer(.environment("ACME_TOKEN")),
            token: Secret(Self.token)
        )
        let context = PullContext(
            edgeCookie: EdgeCookie(unchecked: ec(1)),
            partnerID: "acme",
            sourceDomain: "acme.example",
            now: Timestamp(secondsSinceEpoch: 0)
        )
        return try partner.adapter.makeRequest(for: context)
    }

    @Test("A PullRequest's description and redactedHeaders never contain the token")
    func pullRequest() throws {
        let built = try Self.builtRequest()

        // On the wire, the token is there.
        #expect(
            built.headers.contains { $0.name == "Authorization" && $0.value == "Bearer \(Self.token)" && $0.isSecret }
        )
        #expect(built.headers.contains { $0.name == "X-Api-Key" && $0.value == "key=\(Self.token)" && $0.isSecret })
        #expect(built.headers.contains { $0.name == "X-Partner" && $0.value == "acme" && !$0.isSecret })
        // In every printout, it is not.
        let redacted = built.redactedHeaders.map { "\($0.name): \($0.value)" }
        #expect(redacted == ["X-Api-Key: <redacted>", "X-Partner: acme", "Authorization: <redacted>"])
        #expect(
            built.description
                == "GET https://acme.partner.example/pull?ec_id=\(ec(1)) [X-Api-Key: <redacted>, X-Partner: acme, Authorization: <redacted>]"
        )
        for printout in Self.printouts(of: built) + Self.printouts(of: built.headers) {
            #expect(!printout.contains(Self.token), "\(printout)")
        }
    }

    @Test("An unresolved secret fails the request naming the reference, never a value")
    func unresolvedSecret() async throws {
        let partner = httpPartner("acme", auth: .bearer(.environment("ACME_TOKEN")), token: nil)
        let context = PullContext(
            edgeCookie: EdgeCookie(unchecked: ec(1)),
            partnerID: "acme",
            sourceDomain: "acme.example",
            now: Timestamp(secondsSinceEpoch: 0)
        )

        #expect(throws: AdapterError("secret env:ACME_TOKEN is not resolved")) {
            try partner.adapter.makeRequest(for: context)
        }
        #expect(SecretReference.file("/run/secrets/acme").description == "file:/run/secrets/acme")

        // Through the kernel: skipped with adapter_error, logged with the reference.
        let harness = try Harness(partners: [partner])
        try await harness.seed(1)
        let report = await harness.kernel.process(request(1))
        #expect(report.plan.decision(for: "acme") == .skip(.adapterError))
        #expect(harness.transport.records.isEmpty)
        let entry = try #require(
            harness.logs.entries.first { $0.message.description == "adapter could not build a request" }
        )
        #expect(entry.level == .warning)
        #expect(entry.metadata["error"]?.description == "secret env:ACME_TOKEN is not resolved")
    }

    @Test("Logs of a run with every outcome class contain no token, and stay at warning or below")
    func logsOverEveryOutcome() async throws {
        let replies: [String: ScriptedTransport.Reply] = [
            "uid": .uid("u-1"),
            "notfound": .status(404),
            "nulluid": .ok("{\"uid\":null}"),
            "httperror": .status(500),
            "timeout": .failure(.timeout),
            "transport": .failure(.transportError),
            "tls": .failure(.tlsError),
            "toolarge": .failure(.tooLarge),
            "invalid": .ok("<html>"),
            "refused": .failure(.refusedTarget),
        ]
        var list = replies.keys.sorted().map { id in
            httpPartner(
                id,
                headers: [item("X-Key", "{token}")],
                auth: .bearer(.environment("TOKEN_\(id.uppercased())")),
                token: Secret("\(Self.token)-\(id)")
            )
        }
        list.append(httpPartner("unresolved", token: nil))
        list.append(
            httpPartner(
                "badurl",
                url: PartnerURL(scheme: "http", host: "badurl.partner.example"),
                token: Secret(Self.token)
            )
        )
        let harness = try Harness(partners: list)
        for (id, reply) in replies { harness.transport.script(TestPartners.host(id), reply) }
        try await harness.seed(1)

        let report = await harness.kernel.process(request(1))

        #expect(Set(report.results.map(\.outcome.className)) == Set(OutcomeClass.allCases.map(\.rawValue)))
        let entries = harness.logs.entries
        #expect(entries.count >= replies.count + 1)
        for entry in entries {
            let texts =
                [entry.message.description] + entry.metadata.values.map(\.description)
                + [entry.error.map { "\($0)" } ?? ""]
            for text in texts { #expect(!text.contains(Self.token), "\(text)") }
            #expect(entry.level <= .warning)
        }
        // Normal answers at debug; failures, and a target we refused, at warning.
        let levels = Dictionary(
            entries.compactMap { entry in entry.metadata["partner"].map { ("\($0)", entry.level) } },
            uniquingKeysWith: { Swift.max($0, $1) }
        )
        for id in ["uid", "notfound", "nulluid"] { #expect(levels[id] == .debug, "\(id)") }
        for id in ["httperror", "timeout", "transport", "tls", "toolarge", "invalid", "refused"] {
            #expect(levels[id] == .warning, "\(id)")
        }
    }
}
