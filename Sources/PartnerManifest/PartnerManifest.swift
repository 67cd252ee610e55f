public import PartnerAdapterKit
public import PullSyncKernel

/// One partner manifest, validated. Secret references are kept as references: resolving them is
/// the registry's job, so that `pullsync check` can lint manifests without the secrets present.
public struct PartnerManifest: Sendable {
    /// The file it came from, as the caller gave it.
    public var path: String
    /// `^[a-z0-9_-]{1,32}$`, not reserved (``Partner/isValidID(_:)``).
    public var id: String
    /// A human-readable name: `name`, or the `id` when the manifest gives none.
    public var name: String
    /// The identity graph key: a DNS name, lowercased, without a trailing dot.
    public var sourceDomain: String
    /// `pull.enabled`.
    public var pullEnabled: Bool
    /// `pull.allowed_hosts` (normalized), `pull.ttl`, `pull.rate_limit`, `pull.timeout`,
    /// `pull.budget_per_second` and `consent`, with the defaults for what is not given.
    public var policy: PartnerPolicy
    /// How the partner is spoken to: the manifest-driven HTTP shape, or a compiled adapter.
    public var adapter: Adapter
    /// Every secret reference, with where it is written (for "secret not resolved" errors).
    public var secrets: [SecretUse]
    /// `optout`: the partner's opt-out endpoint, told when an EC it has a UID for is withdrawn
    /// or it is revoked for one; `nil` when the manifest gives none.
    public var optOut: HTTPPullAdapter.Configuration?
    /// `eid`: how the partner's UID appears as an OpenRTB EID, with the defaults (`source` the
    /// `source_domain`, `atype` 3, no `mm`) for what is not given.
    public var eid: EIDMapping
    /// Where `id`'s value is written.
    package var idLocation: (line: Int, column: Int)
    /// Where `source_domain`'s value is written.
    package var sourceDomainLocation: (line: Int, column: Int)
    /// Where `pull.adapter`'s value is written, for a compiled adapter.
    package var adapterLocation: (line: Int, column: Int)?

    /// The manifest-driven request and response shape; `nil` for a compiled adapter.
    public var http: HTTPPullAdapter.Configuration? {
        if case .http(let configuration) = adapter { configuration } else { nil }
    }

    /// `pull.url`.
    public var url: PartnerURL {
        switch adapter {
        case .http(let configuration): configuration.url
        case .compiled(let reference): reference.url
        }
    }

    /// Builds the kernel's ``Partner``.
    ///
    /// - Parameters:
    ///   - secrets: resolved values of ``secrets``' references; a missing one is unresolved (then
    ///     building a request fails, naming the reference).
    ///   - adapters: makes a compiled adapter named in `pull.adapter`.
    ///   - disabledReason: why the partner is disabled although its manifest enables it
    ///     (a secret that did not resolve). Never a secret value.
    /// - Throws: when `pull.adapter` names an adapter `adapters` doesn't have, or the adapter
    ///   refuses its parameters.
    public func makePartner(
        secrets: [SecretReference: Secret] = [:],
        adapters: AdapterRegistry = AdapterRegistry(),
        disabledReason: String? = nil
    ) throws(AdapterError) -> Partner {
        let partnerAdapter: any PartnerAdapter
        switch adapter {
        case .http(let configuration):
            partnerAdapter = HTTPPullAdapter(
                configuration: configuration,
                token: configuration.auth.reference.flatMap { secrets[$0] }
            )
        case .compiled(let reference):
            partnerAdapter = try adapters.makeAdapter(
                named: reference.name,
                configuration: CompiledAdapterConfiguration(
                    url: reference.url,
                    parameters: reference.parameters,
                    secrets: secrets
                )
            )
        }
        return Partner(
            id: id,
            name: name,
            sourceDomain: sourceDomain,
            pullEnabled: pullEnabled,
            disabledReason: disabledReason,
            policy: policy,
            adapter: partnerAdapter,
            eid: eid,
            optOut: optOut.map { HTTPPullAdapter(configuration: $0, token: $0.auth.reference.flatMap { secrets[$0] }) }
        )
    }
}

extension PartnerManifest {
    /// How a partner is spoken to.
    public enum Adapter: Sendable, Hashable {
        /// The manifest-driven ``HTTPPullAdapter``: `pull.query`, `pull.headers`, `pull.auth`, `pull.response`.
        case http(HTTPPullAdapter.Configuration)
        /// A compiled adapter: `pull.adapter` and `pull.params`.
        case compiled(CompiledAdapterReference)
    }

    /// A compiled adapter named by a manifest, with its checked parameters.
    public struct CompiledAdapterReference: Sendable, Hashable {
        /// `pull.adapter`.
        public var name: String
        /// `pull.url`.
        public var url: PartnerURL
        /// `pull.params`, checked against the adapter's descriptor, defaults filled in.
        public var parameters: AdapterParameters
    }

    /// One secret reference in a manifest and where its name or path is written.
    public struct SecretUse: Sendable, Hashable {
        /// The reference, unresolved.
        public var reference: SecretReference
        /// The key it is under, e.g. `pull.auth.bearer` or `pull.params.secret`.
        public var key: String
        /// The 1-based line where the reference's name or path is written.
        public var line: Int
        /// The 1-based column where the reference's name or path is written.
        public var column: Int
    }
}
