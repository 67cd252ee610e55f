// `import PullSync` gives the whole public face: kernel types and manifest loading.
@_exported public import PartnerManifest
@_exported public import PullSyncKernel
