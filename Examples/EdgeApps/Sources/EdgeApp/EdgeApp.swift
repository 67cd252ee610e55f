import PullSync
import PullSyncConsent

/// Prints the partners compiled into this binary, and what pull sync would do for one page view.
///
/// The manifests come from `EmbeddedPartners`, which the EmbedPartners plugin generated from
/// `partners.d/` at build time: nothing is read from disk at run time (run it from any folder).
/// Secrets are still references, resolved here from the environment.
@main
struct EdgeApp {
    static func main() async {
        let loaded = PartnerLoader.load(embedded: EmbeddedPartners.manifests, secrets: EnvironmentSecretResolver())
        for diagnostic in loaded.diagnostics { print("warning: \(diagnostic)") }

        let ids = EmbeddedPartners.partnerIDs.joined(separator: ", ")
        print("EdgeApp: \(loaded.registry.partners.count) partners compiled in: \(ids)")
        for partner in loaded.registry.partners {
            let state = partner.disabledReason.map { "disabled: \($0)" } ?? (partner.pullEnabled ? "enabled" : "paused")
            print("  \(partner.id)  \(partner.sourceDomain)  \(type(of: partner.adapter))  \(state)")
        }

        // What the kernel decides for one organic page view of a freshly issued EC.
        let store = MemoryStore()
        let kernel = PullKernel(
            registry: loaded.registry,
            graph: store,
            rateLimiter: store,
            transport: NoNetwork(),
            consent: IABConsentRules(),
            clock: SystemWallClock()
        )
        let plan = await kernel.explain(
            OrganicRequest(
                path: "/",
                edgeCookie: String(repeating: "ab", count: 32) + ".Edge01",
                ecIssuedOnThisRequest: true,
                consent: .granted
            )
        )
        for decision in plan.decisions.sorted(by: { $0.partnerID < $1.partnerID }) {
            print("  \(decision.partnerID): \(decision.decision)")
        }
    }
}

/// `explain` never sends; this example has no network to send on.
struct NoNetwork: PullTransport {
    func send(_ request: PullRequest, limits: TransportLimits) async -> TransportResult {
        .failure(.refusedTarget)
    }
}
