import PullSync
import PullSyncConsent

/// What `explain` says about a request's consent signals, and why each consent skip happened.
struct ConsentExplanation {
    /// The decoded signals, as `explain --json` prints them under `signals`.
    struct Signals: Encodable {
        /// `Sec-GPC: 1` was given.
        var gpc: Bool
        /// `not_applicable`, `applies`, `missing` (TCF applies, no TC string) or `malformed`.
        var tcf: String
        /// Where the TC string came from: `euconsent-v2` or `GPP section 2`.
        var tcfSource: String?
        var tcfCMPID: Int?
        var tcfPolicyVersion: Int?
        var tcfPurposeConsents: [Int]?
        /// How many vendors have consent.
        var tcfVendorConsentCount: Int?
        /// The GPP string's sections; absent without a GPP string (or when it doesn't decode).
        var gppSections: [Int]?
        var applicableSections: [Int]
        /// Each US signal and what it opts out of, e.g. `us_privacy 1YNN: no opt-out`.
        var us: [String]
        /// Consent strings that don't decode, with the decoder's message.
        var problems: [String]
        /// Why no partner may be called, when that is so.
        var requestDenial: String?

        enum CodingKeys: String, CodingKey {
            case gpc, tcf, us, problems
            case tcfSource = "tcf_source"
            case tcfCMPID = "tcf_cmp_id"
            case tcfPolicyVersion = "tcf_policy_version"
            case tcfPurposeConsents = "tcf_purpose_consents"
            case tcfVendorConsentCount = "tcf_vendor_consent_count"
            case gppSections = "gpp_sections"
            case applicableSections = "applicable_sections"
            case requestDenial = "request_denial"
        }

        /// The table's summary lines (none when the request carries no signal).
        var lines: [String] {
            var lines: [String] = []
            switch tcf {
            case "applies":
                let purposes = tcfPurposeConsents.map { $0.map(String.init).joined(separator: ",") } ?? ""
                lines.append(
                    "TCF: TC string from \(tcfSource ?? "?") (CMP \(tcfCMPID ?? 0), policy \(tcfPolicyVersion ?? 0)); "
                        + "purposes with consent: \(purposes.isEmpty ? "none" : purposes); "
                        + "vendors with consent: \(tcfVendorConsentCount ?? 0)"
                )
            case "missing": lines.append("TCF: applies (GPP section 2) but no TC string")
            case "malformed": lines.append("TCF: the TC string doesn't decode")
            default: break
            }
            if let gppSections {
                let applicable = applicableSections.map(String.init).joined(separator: ",")
                lines.append(
                    "GPP: sections \(gppSections.map(String.init).joined(separator: ",")); applicable: \(applicable)"
                )
            } else if !applicableSections.isEmpty {
                lines.append("GPP: applicable sections \(applicableSections.map(String.init).joined(separator: ","))")
            }
            lines += us.map { "US: \($0)" }
            if gpc { lines.append("GPC: Sec-GPC: 1") }
            lines += problems.map { "problem: \($0)" }
            if let requestDenial { lines.append("no partner is called: \(requestDenial)") }
            return lines
        }
    }

    let signals: Signals
    private let requestDenial: ConsentDenial?
    private let partnerConsent: PartnerConsent
    private let host: ConsentDecision
    private let registry: PartnerRegistry
    private let withdrawn: Bool

    init(request: OrganicRequest, plan: RequestPlan, registry: PartnerRegistry) {
        let decoded = ConsentSignals(request.consentStrings)
        partnerConsent = PartnerConsent(signals: decoded)
        host = request.consent
        requestDenial = decoded.requestDenial(host: request.consent) ?? partnerConsent.requestDenial
        self.registry = registry
        // A `consent` skip of the whole request that no signal explains: the graph says withdrawn.
        withdrawn = plan.requestSkip == .consent && requestDenial == nil

        var problems: [String] = []
        if case .failure(let error) = decoded.gpp { problems.append(error.message) }
        var us: [String] = []
        for signal in decoded.usSignals {
            switch signal {
            case .success(let signal):
                let what =
                    signal.optOuts.isEmpty ? "no opt-out" : "opts out of " + signal.optOuts.joined(separator: ", ")
                us.append("\(signal.source): \(what)")
            case .failure(let error):
                problems.append(error.message)
            }
        }
        var signals = Signals(
            gpc: request.consentStrings.globalPrivacyControl,
            tcf: "not_applicable",
            gppSections: (try? decoded.gpp?.get())?.sectionIDs,
            applicableSections: decoded.applicableSections,
            us: us,
            problems: problems,
            requestDenial: withdrawn ? "the EC's consent was withdrawn" : requestDenial?.description
        )
        switch partnerConsent.tcf {
        case .notApplicable:
            break
        case .missing:
            signals.tcf = "missing"
        case .malformed(let error):
            signals.tcf = "malformed"
            signals.problems.append(error.message)
        case .string(let string, let source):
            signals.tcf = "applies"
            signals.tcfSource = source
            signals.tcfCMPID = string.cmpID
            signals.tcfPolicyVersion = string.policyVersion
            signals.tcfPurposeConsents = string.purposeConsents.sorted()
            signals.tcfVendorConsentCount = string.vendorConsents.ids.count
        }
        self.signals = signals
    }

    /// What the consent signals said about a consent skip; `nil` for other decisions.
    func detail(for decision: PartnerDecision) -> String? {
        guard case .skip(let reason) = decision.decision,
            [.consent, .tcfConsent, .gppSection, .usOptOut, .malformedConsent].contains(reason)
        else { return nil }
        if withdrawn { return "the EC's consent was withdrawn" }
        if let requestDenial, requestDenial.reason == reason { return requestDenial.detail }
        guard let index = registry.index(of: decision.partnerID) else { return nil }
        let requirements = registry.partners[index].policy.consent
        return (partnerConsent.denial(for: requirements) ?? host.policyDenial(of: requirements))?.detail
    }
}
