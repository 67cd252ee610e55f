public import IABConsent
public import PullSyncKernel

/// The spec's consent rules, read from the IAB frameworks' signals with the ``IABConsent``
/// decoders: what a ``PullKernel`` is given as its ``ConsentRules``.
///
/// - Request level (``ConsentSignals/requestDenial(host:)``): the host's decision, GPC, US
///   opt-outs (US privacy string, GPP US sections), GPP or US strings that don't decode.
/// - Per partner (``PartnerConsent/denial(for:)``): TCF v2 vendor consent, purpose 1 and
///   publisher restrictions where TCF applies; GPP sections the partner is skipped in.
public struct IABConsentRules: ConsentRules {
    /// Creates the spec's rules.
    public init() {}

    /// Decodes the request-level signals and applies ``ConsentSignals/requestDenial(host:)``.
    public func requestDenial(_ strings: ConsentStrings, host: ConsentDecision) -> ConsentDenial? {
        ConsentSignals(strings).requestDenial(host: host)
    }

    /// The per-partner rules of ``PartnerConsent``, with the TC string decoded once for the request.
    public func partnerRules(for strings: ConsentStrings) -> any PartnerConsentRules {
        let signals = ConsentSignals(strings)
        // Where neither TCF nor a GPP section applies, no partner is refused by the signals: an
        // empty value, which the existential holds inline (a request without them allocates nothing here).
        guard signals.tcfApplies || !signals.applicableSections.isEmpty else { return NoPartnerSignals() }
        return PartnerConsent(signals: signals)
    }
}

/// The per-partner rules when neither TCF nor a GPP section applies: ``PartnerConsent`` would
/// refuse no partner.
struct NoPartnerSignals: PartnerConsentRules {
    var requestDenial: ConsentDenial? { nil }

    func denial(for requirements: PartnerConsentRequirements) -> ConsentDenial? { nil }
}

/// A request's consent signals, decoded: the GPP header and US sections, the US privacy
/// string and GPC. Cheap enough to build on the request path (the TC string, the one large
/// string, is decoded later by ``PartnerConsent``).
///
/// Request-level rules, in order (``requestDenial(host:)``):
/// 1. the host denied consent: `consent`;
/// 2. `Sec-GPC: 1`, a US privacy string that opts out of sale, or a decoded GPP US section
///    that opts out of sale or sharing (or carries GPC): `us_opt_out`;
/// 3. a GPP string, GPP US section or US privacy string that doesn't decode: `malformed_consent`
///    (consent that can't be read is no consent).
public struct ConsentSignals: Sendable {
    /// The raw signals.
    public let strings: ConsentStrings
    /// The GPP string, decoded; `nil` when the request has none.
    public let gpp: Result<GPPString, ConsentStringError>?
    /// The GPP sections that apply: `gpp_sid` when the request gives it, else every section the
    /// GPP string holds (its applicability unknown, each one is assumed to apply).
    public let applicableSections: [Int]
    /// The US signals found, decoded: the US privacy string, GPP section 6 and the GPP US
    /// sections ``USOptOuts`` reads. Each is an opt-out (with what it said) or not.
    public let usSignals: [Result<USSignal, ConsentStringError>]

    /// One decoded US signal.
    public struct USSignal: Sendable, Hashable {
        /// Where it came from, e.g. `us_privacy 1YNN` or `GPP section 8 (usca)`.
        public var source: String
        /// What it opts out of; empty when nothing.
        public var optOuts: [String]
    }

    /// Decodes `strings`' GPP and US signals; the TC string is left to ``PartnerConsent``.
    public init(_ strings: ConsentStrings) {
        self.strings = strings
        let gpp = strings.gpp.flatMap { $0.isEmpty ? nil : $0 }.map { text in
            Result { () throws(ConsentStringError) in try GPPString(decoding: text) }
        }
        self.gpp = gpp
        let decoded = try? gpp?.get()
        applicableSections = strings.gppSectionIDs.isEmpty ? decoded?.sectionIDs ?? [] : strings.gppSectionIDs

        var usSignals: [Result<USSignal, ConsentStringError>] = []
        if let text = strings.usPrivacy, !text.isEmpty {
            usSignals.append(Self.usPrivacy(text, source: "us_privacy"))
        }
        for section in decoded?.sections ?? [] {
            if section.id == GPPString.usPrivacy {
                usSignals.append(Self.usPrivacy(section.text, source: "GPP section 6 (uspv1)"))
                continue
            }
            do {
                guard let optOuts = try USOptOuts.decode(sectionID: section.id, section.text) else { continue }
                var what: [String] = []
                if optOuts.saleOptOut { what.append("sale") }
                if optOuts.sharingOptOut { what.append("sharing") }
                if optOuts.globalPrivacyControl { what.append("GPC") }
                let name = USOptOuts.name(ofSection: section.id) ?? ""
                usSignals.append(.success(USSignal(source: "GPP section \(section.id) (\(name))", optOuts: what)))
            } catch {
                usSignals.append(.failure(error))
            }
        }
        self.usSignals = usSignals
    }

    private static func usPrivacy(_ text: String, source: String) -> Result<USSignal, ConsentStringError> {
        Result { () throws(ConsentStringError) in
            let string = try USPrivacyString(decoding: text)
            return USSignal(source: "\(source) \(text)", optOuts: string.optedOut ? ["sale"] : [])
        }
    }

    /// Whether the request denies every partner, and why; `nil` when partners may be considered.
    public func requestDenial(host decision: ConsentDecision) -> ConsentDenial? {
        if !decision.granted {
            return ConsentDenial(reason: .consent, detail: "the host's consent decision is denied", withdraws: true)
        }
        if strings.globalPrivacyControl {
            return ConsentDenial(reason: .usOptOut, detail: "Sec-GPC: 1 (Global Privacy Control)", withdraws: true)
        }
        for case .success(let signal) in usSignals where !signal.optOuts.isEmpty {
            return ConsentDenial(
                reason: .usOptOut,
                detail: "\(signal.source) opts out of \(signal.optOuts.joined(separator: " and "))",
                withdraws: true
            )
        }
        if case .failure(let error) = gpp {
            return ConsentDenial(reason: .malformedConsent, detail: error.message, withdraws: false)
        }
        for case .failure(let error) in usSignals {
            return ConsentDenial(reason: .malformedConsent, detail: error.message, withdraws: false)
        }
        return nil
    }

    /// Whether TCF applies to the request: it carries a `euconsent-v2` TC string, or GPP
    /// section 2 (EU TCF v2) applies.
    public var tcfApplies: Bool {
        strings.tcf?.isEmpty == false || applicableSections.contains(GPPString.tcfEUv2)
    }
}

/// The TC string that applies to a request, decoded.
public enum TCFConsent: Sendable {
    /// TCF does not apply: no TC string, and GPP section 2 doesn't apply.
    case notApplicable
    /// The TC string that applies (GPP section 2 when it applies and is present, else `euconsent-v2`).
    case string(TCString, source: String)
    /// TCF applies (GPP section 2 is applicable) but the request carries no TC string.
    case missing
    /// The TC string that applies doesn't decode.
    case malformed(ConsentStringError)
}

/// Per-partner consent for one request: its signals with the TC string decoded once, asked
/// for each partner.
///
/// Per-partner rules, in order (``denial(for:)``):
/// 1. where TCF applies, a partner needs a `tcf_vendor_id`, that vendor needs the user's
///    consent, purpose 1 needs consent, and the publisher must not have restricted purpose 1
///    for the vendor: else `tcf_consent`;
/// 2. one of the partner's `gpp_skip_sections` applies: `gpp_section`.
///
/// The host's ``PartnerConsentPolicy``, if any, is applied by the kernel after these.
public struct PartnerConsent: PartnerConsentRules {
    /// The request's signals.
    public let signals: ConsentSignals
    /// The TC string that applies, decoded.
    public let tcf: TCFConsent

    /// Decodes the TC string that applies to `signals` (GPP section 2 before `euconsent-v2`), if TCF applies.
    public init(signals: ConsentSignals) {
        self.signals = signals
        guard signals.tcfApplies else {
            tcf = .notApplicable
            return
        }
        let gppSection =
            signals.applicableSections.contains(GPPString.tcfEUv2)
            ? (try? signals.gpp?.get())?.section(GPPString.tcfEUv2) : nil
        let (text, source): (String?, String) =
            gppSection.map { ($0, "GPP section 2") } ?? (
                signals.strings.tcf.flatMap { $0.isEmpty ? nil : $0 }, "euconsent-v2"
            )
        guard let text else {
            tcf = .missing
            return
        }
        do {
            tcf = .string(try TCString(decoding: text), source: source)
        } catch {
            tcf = .malformed(error)
        }
    }

    /// A denial for every partner: the TC string that applies doesn't decode.
    public var requestDenial: ConsentDenial? {
        guard case .malformed(let error) = tcf else { return nil }
        return ConsentDenial(reason: .malformedConsent, detail: error.message, withdraws: false)
    }

    /// Why a partner with `requirements` may not be called, or `nil` when its consent allows it.
    public func denial(for requirements: PartnerConsentRequirements) -> ConsentDenial? {
        func tcfDenial(_ detail: String) -> ConsentDenial {
            ConsentDenial(reason: .tcfConsent, detail: detail, withdraws: false)
        }
        switch tcf {
        case .notApplicable:
            break
        case .missing:
            return tcfDenial("TCF applies (GPP section 2) but the request carries no TC string")
        case .malformed(let error):
            return ConsentDenial(reason: .malformedConsent, detail: error.message, withdraws: false)
        case .string(let string, _):
            guard let vendorID = requirements.tcfVendorID else {
                return tcfDenial("TCF applies and the partner has no tcf_vendor_id")
            }
            if let missing = string.missingConsent(forVendor: vendorID) { return tcfDenial(missing) }
        }
        if let section = signals.applicableSections.first(where: requirements.gppSkipSections.contains) {
            return ConsentDenial(
                reason: .gppSection,
                detail: "GPP section \(section) applies and the partner is skipped in it",
                withdraws: false
            )
        }
        return nil
    }
}
