public import PullSyncKernel

/// A partner protocol written in Swift, for partners that a manifest's templates can't
/// describe (a signature over the request, a JSON body, an expiry in the answer).
///
/// A manifest names it in `pull.adapter` and gives its parameters in `pull.params`; the
/// ``AdapterRegistry`` makes one adapter per partner. The kernel treats it like any
/// ``PartnerAdapter``: the built URL must be on the partner's allow-list (checked when the
/// request is built and again before sending), the transport enforces the deadline and the
/// body limit, and ``PartnerAdapter/classify(_:context:)`` must answer with the kernel's
/// outcome classes.
public protocol CompiledAdapter: PartnerAdapter {
    /// Its name and parameters. Manifests are checked against this alone.
    static var descriptor: AdapterDescriptor { get }

    /// Makes the adapter for one partner. Secrets may be unresolved (as when `pullsync check`
    /// or `explain` load partners): then building a request fails, naming the reference.
    init(configuration: CompiledAdapterConfiguration) throws(AdapterError)
}

/// What a compiled adapter is made from: the partner's pull URL, its checked parameters and
/// whichever of its secrets resolved.
public struct CompiledAdapterConfiguration: Sendable {
    /// `pull.url`, whose host the manifest has checked against `pull.allowed_hosts`.
    public var url: PartnerURL
    /// `pull.params`, checked against the adapter's descriptor, with defaults filled in.
    public var parameters: AdapterParameters
    private var secrets: [SecretReference: Secret]

    /// - Parameter secrets: resolved values of `parameters`' references; missing ones are
    ///   unresolved.
    public init(url: PartnerURL, parameters: AdapterParameters, secrets: [SecretReference: Secret] = [:]) {
        self.url = url
        self.parameters = parameters
        self.secrets = secrets
    }

    /// The resolved value of secret parameter `name`; throws, naming the reference (never a
    /// value), when it is missing or did not resolve.
    public func secret(_ name: String) throws(AdapterError) -> Secret {
        guard let reference = parameters.secretReference(name) else {
            throw AdapterError("parameter '\(name)' is not a secret reference")
        }
        guard let value = secrets[reference] else { throw AdapterError("secret \(reference) is not resolved") }
        return value
    }

    /// The resolved value of optional secret parameter `name`: `nil` when the manifest leaves
    /// it out; throws when it is given but did not resolve.
    public func optionalSecret(_ name: String) throws(AdapterError) -> Secret? {
        guard parameters.secretReference(name) != nil else { return nil }
        return try secret(name)
    }
}
