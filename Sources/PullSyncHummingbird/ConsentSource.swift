import HTTPTypes
public import Hummingbird
public import PullSyncKernel

/// Reads one request's consent decision and raw consent signals. Pluggable: a deployment
/// with a CMP of its own supplies its own source.
public protocol ConsentSource: Sendable {
    /// The host's decision for `request` (whose cookies are already parsed), and the consent
    /// signals it carries (the kernel decodes them per partner).
    func consent(for request: Request, cookies: RequestCookies) -> (decision: ConsentDecision, strings: ConsentStrings)
}

/// The reference service's consent signals, from the standard cookies and headers:
///
/// - the host's decision: denied by the cookie `ts-consent=0`, granted otherwise;
/// - `Sec-GPC: 1`: Global Privacy Control, an opt-out of sale and sharing (no partner is called);
/// - the TCF v2 TC string: cookie `euconsent-v2`;
/// - the GPP string: cookie `__gpp` (or `gpp`), its applicable section IDs: `__gpp_sid` (or
///   `gpp_sid`), separated by `,` or `_`;
/// - the US privacy string: cookie `us_privacy` (or `usprivacy`).
///
/// A value over 4 KiB is dropped, and a section list that isn't one is ignored: the kernel
/// then falls back to the sections the GPP string itself lists.
public struct StandardConsentSource: ConsentSource {
    /// Extra per-partner rules; `nil` for none.
    public var partnerPolicy: (any PartnerConsentPolicy)?

    private static let secGPC = HTTPField.Name("Sec-GPC")!

    /// Creates the standard source, with optional extra per-partner rules.
    public init(partnerPolicy: (any PartnerConsentPolicy)? = nil) {
        self.partnerPolicy = partnerPolicy
    }

    /// The host's decision (denied by `ts-consent=0`, with ``partnerPolicy``) and the signals read from
    /// `request`'s headers and `cookies`.
    public func consent(for request: Request, cookies: RequestCookies) -> (decision: ConsentDecision, strings: ConsentStrings)
    {
        let gpc = request.headers.contains { $0.name == Self.secGPC && $0.value.trimmed() == "1" }
        let optedOut = cookies["ts-consent"] == "0"
        // The first name present decides (a cookie is never empty: an empty one reads as none).
        // An oversized value is dropped rather than cut: a cut string would decode wrongly.
        func capped(_ value: Substring?) -> String? {
            guard let value, value.utf8.count <= 4096 else { return nil }
            return String(value)
        }
        let strings = ConsentStrings(
            tcf: capped(cookies["euconsent-v2"]),
            gpp: capped(cookies["__gpp"] ?? cookies["gpp"]),
            gppSectionIDs: capped(cookies["__gpp_sid"] ?? cookies["gpp_sid"]).map(Self.sectionIDs) ?? [],
            usPrivacy: capped(cookies["us_privacy"] ?? cookies["usprivacy"]),
            globalPrivacyControl: gpc
        )
        return (ConsentDecision(granted: !optedOut, partnerPolicy: partnerPolicy), strings)
    }

    /// `2,6`, `2_6` or `2%2C6` as section IDs; empty (not given) unless every entry is an ID
    /// from 1 to 255, at most 64 of them.
    package static func sectionIDs(_ value: String) -> [Int] {
        let entries = value.replacing("%2C", with: ",").replacing("%2c", with: ",").split(
            omittingEmptySubsequences: false,
            whereSeparator: { $0 == "," || $0 == "_" }
        )
        guard entries.count <= 64 else { return [] }
        var ids: [Int] = []
        for entry in entries {
            guard let id = Int(entry.trimmed()), (1...255).contains(id) else { return [] }
            ids.append(id)
        }
        return ids
    }
}

extension StringProtocol {
    fileprivate func trimmed() -> Substring {
        var text = Substring(self)
        while text.first == " " || text.first == "\t" { text.removeFirst() }
        while text.last == " " || text.last == "\t" { text.removeLast() }
        return text
    }
}
