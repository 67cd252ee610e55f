// `import PullSync` gives what an embedder uses: the facade, the kernel's types and seams, and the
// storage contract. Adapter authors import `PartnerAdapterKit` (and `PullSyncAdapters` for the
// compiled adapters); manifest tooling imports `PartnerManifest`.
@_exported public import PullSyncKernel
@_exported public import PullSyncStorage
