import PullSyncKernel
public import PartnerAdapterKit

extension AdapterRegistry {
    /// The compiled adapters this package ships: `json-post` (``JSONPostAdapter``) and
    /// `signed-get` (``SignedGetAdapter``). Their descriptors are
    /// `AdapterDescriptor.builtIn`, which manifests are checked against where the adapters
    /// themselves aren't linked (the build plugin's tool).
    public static let builtIn = AdapterRegistry()
        .registering(JSONPostAdapter.self)
        .registering(SignedGetAdapter.self)
}
