/// The result of loading files and folders of manifests.
public struct ManifestSet: Sendable {
    /// The fully valid manifests, in file order, minus those whose `id` or `source_domain`
    /// repeats an earlier file's.
    public var manifests: [PartnerManifest]
    /// Every problem in every file, sorted by path, line and column.
    public var diagnostics: [ManifestDiagnostic]
    /// Every file examined, in the order examined (including files that could not be read).
    public var files: [String]

    package init(manifests: [PartnerManifest] = [], diagnostics: [ManifestDiagnostic] = [], files: [String] = []) {
        self.manifests = manifests
        self.diagnostics = diagnostics
        self.files = files
    }

    /// Whether no problem was found.
    public var isValid: Bool { diagnostics.isEmpty }
}
