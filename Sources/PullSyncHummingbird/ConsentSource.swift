import HTTPTypes
public import Hummingbird
public import PullSyncKernel

/// Reads one request's consent decision and raw consent strings. Pluggable: a deployment
/// with a CMP of its own supplies its own source.
public protocol ConsentSource: Sendable {
    /// The host's decision for `request` (whose cookies are already parsed), and the consent
    /// strings it carries.
    func consent(for request: Request, cookies: Cookies) -> (decision: ConsentDecision, strings: ConsentStrings)
}

/// The reference service's consent signals.
///
/// - Denied when the request carries `Sec-GPC: 1` or the cookie `ts-consent=0`; granted otherwise.
/// - Raw strings passed on to partner templates (and to a per-partner policy): the TCF TC
///   string from the `euconsent-v2` cookie, the US privacy string from `usprivacy`, the GPP
///   string from `gpp` and its section IDs from `gpp_sid` (comma-separated). Each is capped
///   at 4 KiB; a longer value is dropped.
public struct StandardConsentSource: ConsentSource {
    /// Decides a partner's own consent from the strings; `nil` for none.
    public var partnerPolicy: (any PartnerConsentPolicy)?

    public init(partnerPolicy: (any PartnerConsentPolicy)? = nil) {
        self.partnerPolicy = partnerPolicy
    }

    public func consent(for request: Request, cookies: Cookies) -> (decision: ConsentDecision, strings: ConsentStrings)
    {
        let gpcOptOut = request.headers[values: HTTPField.Name("Sec-GPC")!].contains { $0.trimmed() == "1" }
        let optedOut = cookies["ts-consent"]?.value == "0"
        func capped(_ name: String) -> String? {
            guard let value = cookies[name]?.value, !value.isEmpty, value.utf8.count <= 4096 else { return nil }
            return value
        }
        let sections =
            capped("gpp_sid")?.split(separator: ",").prefix(64).compactMap { Int($0.trimmed()) }.filter {
                (1...255).contains($0)
            } ?? []
        let strings = ConsentStrings(
            tcf: capped("euconsent-v2"),
            gpp: capped("gpp"),
            gppSectionIDs: sections,
            usPrivacy: capped("usprivacy")
        )
        return (ConsentDecision(granted: !(gpcOptOut || optedOut), partnerPolicy: partnerPolicy), strings)
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
