import ArgumentParser
import Foundation
import PartnerAdapterKit
import PullSync
import PullSyncConsent
import PullSyncStorage

struct TryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "try",
        abstract: "Send one partner's real pull (or opt-out) request once and show the classified outcome.",
        discussion: """
            Ignores eligibility, rate limits, budget and circuit state, and stores nothing. The \
            URL safety rules still apply. Secrets are resolved from the environment or files and \
            are never printed. Exits 0 whenever the outcome was classified, whatever it is.
            """
    )

    @Option(help: "The partner manifests folder (or a file).")
    var partners: String = "partners.d"

    @Option(help: "The partner to call (its manifest id).")
    var partner: String

    @Option(name: .customLong("ec-id"), help: "The EC value to send.")
    var ecID: String

    @Option(name: .customLong("tls-ca-file"), help: "A PEM file of extra trust roots for partner TLS.")
    var tlsCAFile: String?

    @Flag(name: .customLong("allow-loopback"), help: "Allow loopback partner URLs, over https or http (development).")
    var allowLoopback = false

    @Flag(help: "Print one JSON object.")
    var json = false

    @Flag(help: "Send the partner's opt-out request (its manifest's optout:) instead of its pull request.")
    var optout = false

    // For tests on a busy machine, where a loopback TLS handshake can outlast the default 1 s.
    @Option(name: .customLong("connect-timeout"), help: ArgumentHelp(visibility: .hidden))
    var connectTimeout: Double?

    func run() async throws {
        let loaded = PartnerLoader.load(paths: [partners], secrets: EnvironmentSecretResolver())
        guard let index = loaded.registry.index(of: partner) else {
            for diagnostic in loaded.diagnostics { printError(diagnostic.description) }
            let known = loaded.registry.partners.map(\.id).joined(separator: ", ")
            throw ValidationError(
                "no valid partner '\(partner)' in \(partners) (valid: \(known.isEmpty ? "none" : known))"
            )
        }
        let selected = loaded.registry.partners[index]
        if let reason = selected.disabledReason {
            for diagnostic in loaded.diagnostics where diagnostic.message.contains("'\(partner)'") {
                printError(diagnostic.description)
            }
            throw ValidationError("partner '\(partner)' can't be called: \(reason)")
        }
        guard let edgeCookie = DefaultEdgeCookieFormat().parse(ecID) else {
            throw ValidationError("--ec-id '\(ecID)' is not a valid EC (64 lowercase hex, '.', 6 alphanumerics)")
        }
        if let tlsCAFile, !FileManager.default.isReadableFile(atPath: tlsCAFile) {
            throw ValidationError("--tls-ca-file '\(tlsCAFile)' cannot be read")
        }

        let transport = HTTPPullTransport(
            configuration: HTTPPullTransport.Configuration(
                allowLoopback: allowLoopback,
                additionalTrustRootFiles: tlsCAFile.map { [$0] } ?? [],
                connectTimeout: connectTimeout.map { .milliseconds(Int64($0 * 1000)) } ?? .seconds(1)
            )
        )
        let kernel = PullKernel(
            registry: loaded.registry,
            configuration: PullSyncConfiguration(allowLoopback: allowLoopback),
            graph: InMemoryIdentityGraph(),
            rateLimiter: InMemoryRateLimiter(),
            transport: transport,
            consent: IABConsentRules(),
            clock: SystemWallClock()
        )
        /// Sends once, then closes the transport whatever happened; an adapter error names the partner.
        func sendOnce<T: Sendable>(_ send: () async throws(AdapterError) -> T) async throws -> T {
            let sent: Result<T, AdapterError>
            do {
                sent = .success(try await send())
            } catch {
                sent = .failure(error)
            }
            await transport.shutdown()
            switch sent {
            case .success(let value): return value
            case .failure(let error): throw ValidationError("partner '\(partner)': \(error.message)")
            }
        }
        let report: TryReport
        if optout {
            let started = ContinuousClock.now
            guard let sent = try await sendOnce({ () throws(AdapterError) in
                try await kernel.probeOptOut(partnerID: partner, edgeCookie: edgeCookie)
            }) else {
                throw ValidationError("partner '\(partner)' has no opt-out endpoint (optout: in its manifest)")
            }
            report = TryReport(optOut: sent, partnerID: partner, elapsed: ContinuousClock.now - started)
        } else {
            guard let result = try await sendOnce({ () throws(AdapterError) in
                try await kernel.probe(partnerID: partner, edgeCookie: edgeCookie)
            }) else {
                throw ValidationError("no partner '\(partner)'")
            }
            report = TryReport(result)
        }
        print(json ? try report.jsonString() : report.text)
    }

}

struct TryReport: Encodable {
    struct Request: Encodable {
        var method: String
        var url: String
        var headers: [String: String]
    }

    var partner: String
    var request: Request
    var status: Int?
    var outcome: String
    var uid: String?
    var elapsedMS: Double

    enum CodingKeys: String, CodingKey {
        case partner, request, status, outcome, uid
        case elapsedMS = "elapsed_ms"
    }

    init(_ result: ProbeResult) {
        partner = result.partnerID
        request = Request(
            method: result.request.method,
            url: result.request.renderedURL,
            headers: Dictionary(result.request.redactedHeaders.map { ($0.name, $0.value) }, uniquingKeysWith: { $1 })
        )
        status = result.status
        outcome = result.outcome.className
        if case .uid(let value, _) = result.outcome { uid = value }
        elapsedMS = (result.duration.seconds * 1000 * 10).rounded() / 10
    }

    /// An opt-out's report: `outcome` is what the outbox would make of the answer
    /// (`acknowledged`, `retry: …`, `failed: …`).
    init(optOut sent: (request: PullRequest, status: Int?, attempt: OptOutAttempt), partnerID: String, elapsed: Duration) {
        partner = partnerID
        request = Request(
            method: sent.request.method,
            url: sent.request.renderedURL,
            headers: Dictionary(sent.request.redactedHeaders.map { ($0.name, $0.value) }, uniquingKeysWith: { $1 })
        )
        status = sent.status
        switch sent.attempt {
        case .acknowledged: outcome = "acknowledged"
        case .retry(let reason, _): outcome = "retry (\(reason))"
        case .failed(let reason): outcome = "failed (\(reason))"
        }
        elapsedMS = (elapsed.seconds * 1000 * 10).rounded() / 10
    }

    // Encodes `status` and `uid` as null when absent (the contract lists them as present).
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(partner, forKey: .partner)
        try container.encode(request, forKey: .request)
        try container.encode(status, forKey: .status)
        try container.encode(outcome, forKey: .outcome)
        try container.encode(uid, forKey: .uid)
        try container.encode(elapsedMS, forKey: .elapsedMS)
    }

    var text: String {
        var lines = ["\(request.method) \(request.url)"]
        for (name, value) in request.headers.sorted(by: { $0.key < $1.key }) { lines.append("  \(name): \(value)") }
        lines.append("status:  \(status.map(String.init) ?? "none")")
        lines.append("outcome: \(outcome)\(uid.map { " (uid \($0))" } ?? "")")
        lines.append("elapsed: \(elapsedMS) ms")
        return lines.joined(separator: "\n")
    }
}
