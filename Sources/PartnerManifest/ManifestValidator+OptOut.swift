import PartnerAdapterKit
import PullSyncKernel
import StrictYAML

extension ManifestValidator {
    /// `optout`: the partner's opt-out endpoint, with the request keys of `pull` and a method,
    /// on one of `pull.allowed_hosts` (the kernel sends nowhere else).
    mutating func validateOptOut(
        _ entry: Entry,
        allowedHosts: AllowedHosts?
    ) -> (configuration: HTTPPullAdapter.Configuration, secrets: [PartnerManifest.SecretUse])? {
        guard let fields = fields(of: entry) else { return nil }
        let before = problemCount
        var url: PartnerURL?
        if let entry = fields.required("url", in: &self) { url = partnerURL(entry, allowedHosts: allowedHosts) }
        var method = "GET"
        if let entry = fields["method"], let value = string(entry, expected: Self.key(entry).expected) {
            if HTTPPullAdapter.Configuration.optOutMethods.contains(value) { method = value } else { mismatch(entry) }
        }
        let request = validateRequest(fields, section: "optout")
        guard problemCount == before, let url, let request else { return nil }
        return (
            HTTPPullAdapter.Configuration(
                url: url,
                method: method,
                query: request.query,
                headers: request.headers,
                auth: request.auth
            ),
            request.secrets
        )
    }
}
