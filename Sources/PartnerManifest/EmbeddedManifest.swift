/// A manifest compiled into a binary: the build plugin (`Plugins/EmbedPartners`) validates a
/// target's `partners.d/` and generates a list of these, for edge services that can't read files
/// at run time. Load them with ``ManifestLoader/load(embedded:adapters:)``.
public struct EmbeddedManifest: Sendable, Hashable {
    /// The file it came from, relative to its package (`partners.d/acme.yaml`), for diagnostics.
    public var path: String
    /// The manifest's text, byte for byte.
    public var text: String

    /// A manifest's text and the path to name in its diagnostics (what generated code calls).
    public init(path: String, text: String) {
        self.path = path
        self.text = text
    }
}
