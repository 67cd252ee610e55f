import ArgumentParser
import Foundation
import Logging
import PartnerAdapterKit
import PullSync
import PullSyncConsent
import PullSyncEdge
import PullSyncStorage

struct ExplainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Show each partner's decision for one hypothetical request, without sending anything."
    )

    enum ConsentChoice: String, ExpressibleByArgument, CaseIterable {
        case granted, denied
    }

    @Option(help: "The partner manifests folder (or a file).")
    var partners: String = "partners.d"

    @Option(name: .customLong("ec-id"), help: "The EC value, e.g. <64 hex>.<6 alphanumerics>.")
    var ecID: String

    @Option(help: "The request path.")
    var path: String = "/"

    @Option(help: "The host's consent decision.")
    var consent: ConsentChoice = .granted

    @Option(name: .customLong("tcf"), help: "The request's TCF v2 TC string (the euconsent-v2 cookie).")
    var tcf: String?

    @Option(name: .customLong("gpp"), help: "The request's GPP string (the __gpp cookie).")
    var gpp: String?

    @Option(
        name: .customLong("gpp-sid"),
        help: "The GPP section IDs that apply, e.g. 2,7 (the __gpp_sid cookie; default: the GPP string's own)."
    )
    var gppSID: String?

    @Option(name: .customLong("us-privacy"), help: "The request's US privacy string, e.g. 1YNN.")
    var usPrivacy: String?

    @Flag(name: .customLong("gpc"), help: "The request carries Sec-GPC: 1 (Global Privacy Control).")
    var gpc = false

    @Flag(help: "Treat the EC as issued on this request (known even if the store has never seen it).")
    var issued = false

    @Option(help: "The store to read: memory: (default), sqlite:PATH or postgres://USER@HOST/DB.")
    var store: String = "memory:"

    @Option(
        name: .customLong("max-calls-per-request"),
        help: "Cap the calls made for one request; the rest are deferred."
    )
    var maxCallsPerRequest: Int?

    @Flag(name: .customLong("allow-loopback"), help: "Allow partner URLs on loopback hosts (development).")
    var allowLoopback = false

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    func validate() throws {
        if let maxCallsPerRequest, maxCallsPerRequest < 1 {
            throw ValidationError("--max-calls-per-request must be at least 1")
        }
        if let gppSID, Self.sectionIDs(gppSID) == nil {
            throw ValidationError("--gpp-sid must be GPP section IDs from 1 to 255, separated by commas, like 2,7")
        }
    }

    static func sectionIDs(_ text: String) -> [Int]? {
        let ids = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !ids.isEmpty, ids.allSatisfy({ $0.map { (1...255).contains($0) } ?? false }) else { return nil }
        return ids.compactMap { $0 }
    }

    func run() async throws {
        let loaded = PartnerLoader.load(paths: [partners], secrets: StandInSecrets())
        for diagnostic in loaded.diagnostics {
            FileHandle.standardError.write(Data((diagnostic.description + "\n").utf8))
        }
        let opened: any PullSyncStore
        do {
            opened = try await StoreURL.open(store, drivers: [.memory, .sqlite, .postgres], logger: Logger(label: "pullsync.explain"))
        } catch {
            FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
            throw ExitCode(1)
        }
        let kernel = PullKernel(
            registry: loaded.registry,
            configuration: PullSyncConfiguration(maxCallsPerRequest: maxCallsPerRequest, allowLoopback: allowLoopback),
            graph: opened,
            rateLimiter: opened,
            transport: RefusingTransport(),
            consent: IABConsentRules(),
            clock: SystemWallClock()
        )
        let request = OrganicRequest(
            path: path,
            edgeCookie: ecID,
            ecIssuedOnThisRequest: issued,
            consent: consent == .granted ? .granted : .denied,
            consentStrings: ConsentStrings(
                tcf: tcf,
                gpp: gpp,
                gppSectionIDs: gppSID.flatMap(Self.sectionIDs) ?? [],
                usPrivacy: usPrivacy,
                globalPrivacyControl: gpc
            )
        )
        let (plan, eids) = try await opened.whileRunning {
            let plan = await kernel.explain(request)
            // What a bid request would carry: nothing yet for an EC issued on this request.
            guard let edgeCookie = plan.edgeCookie, !issued else { return (plan, [EID]()) }
            let eids = try await kernel.eids(for: edgeCookie, consent: request.consent, strings: request.consentStrings)
            return (plan, eids ?? [])
        }
        let order = Dictionary(uniqueKeysWithValues: loaded.registry.partners.enumerated().map { ($1.id, $0) })
        let decisions = plan.decisions.sorted { order[$0.partnerID, default: 0] < order[$1.partnerID, default: 0] }
        let report = ExplainReport(
            request: request,
            plan: plan,
            decisions: decisions,
            consent: ConsentExplanation(request: request, plan: plan, registry: loaded.registry),
            eids: eids,
            optOutPartners: Set(loaded.registry.partners.filter { $0.optOut != nil }.map(\.id))
        )
        print(json ? try report.jsonString() : report.table())
        if !loaded.diagnostics.isEmpty { throw ExitCode(1) }
    }
}

/// `explain` needs no secrets (it never sends, and never prints headers), so every reference
/// gets a stand-in value that lets requests be built and their URLs shown.
struct StandInSecrets: SecretResolver {
    func resolve(_ reference: SecretReference) throws(SecretResolutionError) -> Secret {
        Secret("unresolved-\(reference)")
    }
}

/// `explain` never sends; if the kernel ever tried, this refuses.
struct RefusingTransport: PullTransport {
    func send(_ request: PullRequest, limits: TransportLimits) async -> TransportResult {
        .failure(.refusedTarget)
    }
}

struct ExplainReport: Encodable {
    struct Entry: Encodable {
        var partner: String
        var decision: String
        var reason: String
        /// What the consent signals said, for consent skips.
        var detail: String?
        var url: String?
        /// The request's consent refuses the partner and the EC holds its UID (or a call to it is
        /// in flight): a real request revokes it.
        var revokes: Bool?
        /// A revocation would put an opt-out to the partner's endpoint (its manifest's `optout:`)
        /// in the outbox.
        var tells: Bool?
    }

    var ecID: String
    var ecHash: String?
    var path: String
    var consent: String
    var issued: Bool
    var signals: ConsentExplanation.Signals
    var partners: [Entry]
    /// The OpenRTB EIDs a bid request for this request would carry.
    var eids: [EID]

    enum CodingKeys: String, CodingKey {
        case ecID = "ec_id"
        case ecHash = "ec_hash"
        case path, consent, issued, signals, partners, eids
    }

    init(
        request: OrganicRequest,
        plan: RequestPlan,
        decisions: [PartnerDecision],
        consent explanation: ConsentExplanation,
        eids: [EID],
        optOutPartners: Set<String> = []
    ) {
        self.eids = eids
        signals = explanation.signals
        ecID = request.edgeCookie ?? ""
        ecHash = plan.edgeCookie?.hashString
        path = request.path
        consent = request.consent.granted ? "granted" : "denied"
        issued = request.ecIssuedOnThisRequest
        let urls = Dictionary(
            plan.calls.map { ($0.partnerID, $0.request.renderedURL) },
            uniquingKeysWith: { a, _ in a }
        )
        partners = decisions.map { decision in
            let revokes = plan.revoked.contains(decision.partnerID)
            return Entry(
                partner: decision.partnerID,
                decision: decision.decision.kind,
                reason: decision.decision == .dispatch ? "eligible" : decision.decision.reason,
                detail: explanation.detail(for: decision),
                url: urls[decision.partnerID],
                revokes: revokes ? true : nil,
                tells: revokes && optOutPartners.contains(decision.partnerID) ? true : nil
            )
        }
    }

    func table() -> String {
        var lines = ["EC \(ecID) on \(path) (consent \(consent)\(issued ? ", issued on this request" : ""))"]
        lines += signals.lines.map { "  " + $0 }
        let width = max(7, partners.map(\.partner.count).max() ?? 0)
        func pad(_ text: String, _ count: Int) -> String {
            text + String(repeating: " ", count: max(0, count - text.count))
        }
        lines.append(pad("PARTNER", width) + "  " + pad("DECISION", 8) + "  REASON")
        for entry in partners {
            var line = pad(entry.partner, width) + "  " + pad(entry.decision, 8) + "  " + entry.reason
            if let detail = entry.detail { line += " (\(detail))" }
            if entry.revokes == true {
                line += entry.tells == true ? "; its UID would be removed and its opt-out endpoint told" : "; its UID would be removed"
            }
            if let url = entry.url { line += "  " + url }
            lines.append(line)
        }
        if partners.isEmpty { lines.append("(no partners)") }
        lines.append("EIDs a bid request would carry (OpenRTB 2.6 user.eids):")
        for eid in eids {
            for uid in eid.uids {
                lines.append("  \(eid.source)  atype \(uid.atype)\(eid.mm.map { "  mm \($0)" } ?? "")  \(uid.id)")
            }
        }
        if eids.isEmpty { lines.append("  (none)") }
        return lines.joined(separator: "\n")
    }
}
