// `import PullSync` gives the whole public face: kernel types, manifest loading and the
// compiled adapters this package ships.
@_exported public import PartnerManifest
@_exported public import PullSyncAdapters
@_exported public import PullSyncKernel
@_exported public import PullSyncStorage
@_exported public import PartnerAdapterKit
