package import PullSyncKernel

/// Compiled adapters by name: what `pull.adapter` in a manifest can name, and how to make each.
///
/// `PullSync` loads partners with `AdapterRegistry.builtIn` (the adapters this package ships);
/// a deployment with adapters of its own adds them:
///
/// ```swift
/// let adapters = AdapterRegistry.builtIn.registering(MyPartnerAdapter.self)
/// let loaded = PartnerLoader.load(paths: ["partners.d"], secrets: secrets, adapters: adapters)
/// ```
public struct AdapterRegistry: Sendable {
    private struct Entry: Sendable {
        var descriptor: AdapterDescriptor
        var make: @Sendable (CompiledAdapterConfiguration) throws(AdapterError) -> any PartnerAdapter
    }

    private var entries: [String: Entry]

    /// A registry with no adapters.
    public init() {
        entries = [:]
    }

    /// This registry and `adapter`. An adapter registered under the same name is replaced, so a
    /// deployment can swap a shipped adapter for its own version.
    public func registering<Adapter: CompiledAdapter>(_ adapter: Adapter.Type) -> AdapterRegistry {
        precondition(
            AdapterDescriptor.isValidName(Adapter.descriptor.name),
            "adapter name '\(Adapter.descriptor.name)' must match ^[a-z0-9][a-z0-9-]{0,31}$"
        )
        var copy = self
        copy.entries[Adapter.descriptor.name] = Entry(descriptor: Adapter.descriptor) {
            (configuration) throws(AdapterError) -> any PartnerAdapter in
            try Adapter(configuration: configuration)
        }
        return copy
    }

    /// Every registered adapter's descriptor, sorted by name: what manifests are checked against.
    package var descriptors: [AdapterDescriptor] {
        entries.values.map(\.descriptor).sorted { $0.name < $1.name }
    }

    /// The descriptor of the adapter called `name`.
    package func descriptor(named name: String) -> AdapterDescriptor? { entries[name]?.descriptor }

    /// Makes adapter `name` for one partner.
    package func makeAdapter(
        named name: String,
        configuration: CompiledAdapterConfiguration
    ) throws(AdapterError) -> any PartnerAdapter {
        guard let entry = entries[name] else {
            let known = entries.keys.sorted().joined(separator: ", ")
            throw AdapterError(
                "no compiled adapter '\(name)' is registered (registered: \(known.isEmpty ? "none" : known))"
            )
        }
        return try entry.make(configuration)
    }
}
