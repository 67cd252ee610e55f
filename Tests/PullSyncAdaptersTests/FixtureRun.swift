import Foundation
import PartnerAdapterKit
import PullSync
import PullSyncConsent
import PullSyncStorage
import PullSyncTesting
import Testing

/// Runs one fixture the way production runs a partner: the manifest loads through
/// `PartnerLoader` (secrets resolved from the fixture), the kernel builds the request with the
/// partner's adapter and checks it against the allow-list, the transport sends it, the adapter
/// classifies the answer.
enum FixtureRun {
    /// What the kernel did: the request and its classified outcome, or the adapter's refusal.
    typealias Result = Swift.Result<ProbeResult, AdapterError>

    /// With `timeout`, the partner's own timeout is replaced by it: over real sockets, a busy
    /// machine's TLS handshake can outlast a partner's sub-second timeout, and these checks are
    /// about what is sent and how the answer is classified, not about speed.
    static func run(
        _ fixtureCase: FixtureCase,
        _ fixture: PartnerFixture,
        transport: any PullTransport,
        timeout: Duration? = nil
    ) async throws -> Result {
        let loaded = PartnerLoader.load(
            paths: [fixtureCase.manifestPath],
            secrets: FixtureSecrets(values: fixture.secrets ?? [:])
        )
        // A fixture may leave a secret out on purpose; nothing else may be wrong with the manifest.
        let unexpected = loaded.diagnostics.filter { !$0.message.contains("is not set; partner") }
        #expect(unexpected.map(\.description) == [], "\(fixtureCase.testDescription)")
        var partner = try #require(loaded.registry.partners.first, "\(fixtureCase.manifestPath) did not load")
        #expect(partner.id == fixtureCase.partner, "the folder is named after the partner id")
        var registry = loaded.registry
        if let timeout {
            partner.policy.timeout = timeout
            registry = try PartnerRegistry([partner])
        }
        let edgeCookie = try #require(DefaultEdgeCookieFormat().parse(fixture.context.ecID), "context.ec_id")
        let kernel = PullKernel(
            registry: registry,
            graph: InMemoryIdentityGraph(),
            rateLimiter: InMemoryRateLimiter(),
            transport: transport,
            consent: IABConsentRules(),
            clock: TestWallClock(start: Timestamp(secondsSinceEpoch: fixture.context.now))
        )
        let result: ProbeResult?
        do {
            result = try await kernel.probe(
                partnerID: partner.id,
                edgeCookie: edgeCookie,
                consentStrings: fixture.consentStrings
            )
        } catch {
            return .failure(error)
        }
        return .success(try #require(result))
    }

    /// Compares what the kernel did with what the fixture expects, recording every difference.
    static func check(_ result: Result, against fixture: PartnerFixture, name: String) {
        let expected = fixture.expectedOutcome
        switch (fixture.expectedRequest, result) {
        case (nil, .failure(let error)):
            #expect(expected.outcomeClass == "adapter_error", "\(name): \(error.message)")
            if let part = expected.messageContains {
                #expect(error.message.contains(part), "\(name): \(error.message)")
            }
            // The refusal names a reference, never a value.
            for value in (fixture.secrets ?? [:]).values { #expect(!error.message.contains(value), "\(name)") }
        case (nil, .success(let probe)):
            Issue.record("\(name): expected no request, but the adapter built \(probe.request)")
        case (_?, .failure(let error)):
            Issue.record("\(name): the adapter built no request: \(error.message)")
        case (let request?, .success(let probe)):
            checkRequest(probe.request, against: request, fixture: fixture, name: name)
            #expect(probe.outcome.className == expected.outcomeClass, "\(name)")
            if let status = expected.status { #expect(probe.status == status, "\(name)") }
            if case .uid(let uid, let expiresAt) = probe.outcome {
                #expect(uid == expected.uid, "\(name)")
                if expected.hasExpiresAt {
                    #expect(expiresAt?.secondsSinceEpoch == expected.expiresAt, "\(name): expires_at")
                }
            }
        }
    }

    static func checkRequest(
        _ built: PullRequest,
        against expected: PartnerFixture.ExpectedRequest,
        fixture: PartnerFixture,
        name: String
    ) {
        #expect(built.method == expected.method, "\(name): method")
        #expect(built.renderedURL == fixture.substitutingSecrets(in: expected.url), "\(name): url")
        let headers = Dictionary(built.headers.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
        #expect(headers == expected.headers.mapValues(fixture.substitutingSecrets), "\(name): headers")
        #expect(built.body.flatMap(JSONValue.parse) == expected.body, "\(name): body")
        if expected.body != nil {
            #expect(built.body.flatMap(JSONValue.parse) != nil, "\(name): the body is not JSON")
        } else {
            #expect(built.body == nil, "\(name): unexpected body")
        }
    }
}
