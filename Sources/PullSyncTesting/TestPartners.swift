public import PullSyncKernel
public import PartnerAdapterKit

/// Builders for partners and ECs in tests and benchmarks.
public enum TestPartners {
    /// A manifest-style partner `id` at `https://{id}.partner.example/pull`, bearer token `token-{id}`,
    /// with ``PartnerPolicy``'s defaults for what is not given.
    public static func partner(
        _ id: String,
        ttl: Duration? = nil,
        rateLimit: RateLimitPolicy = RateLimitPolicy(),
        timeout: Duration? = nil,
        budgetPerSecond: Double? = nil,
        consent: PartnerConsentRequirements = PartnerConsentRequirements(),
        pullEnabled: Bool = true,
        token: Secret? = nil
    ) -> Partner {
        let host = "\(id).partner.example"
        let configuration = HTTPPullAdapter.Configuration(
            url: PartnerURL(scheme: "https", host: host, path: "/pull"),
            auth: .bearer(.environment("TOKEN_\(id.uppercased())"))
        )
        var policy = PartnerPolicy(
            allowedHosts: AllowedHosts([host]),
            rateLimit: rateLimit,
            budgetPerSecond: budgetPerSecond,
            consent: consent
        )
        if let ttl { policy.ttl = ttl }
        if let timeout { policy.timeout = timeout }
        return Partner(
            id: id,
            sourceDomain: "\(id).example",
            pullEnabled: pullEnabled,
            policy: policy,
            adapter: HTTPPullAdapter(configuration: configuration, token: token ?? Secret("token-\(id)"))
        )
    }

    /// The host `partner(id)` sends to.
    public static func host(_ id: String) -> String { "\(id).partner.example" }

    /// A well-formed EC whose hash is derived from `n`.
    public static func edgeCookie(_ n: Int, suffix: String = "AbC123") -> String {
        var hex = String(UInt64(truncatingIfNeeded: n), radix: 16)
        hex = String(repeating: "0", count: 64 - hex.count) + hex
        return hex + "." + suffix
    }
}
