public import PartnerAdapterKit
import PullSyncKernel
import StrictYAML

/// Loads partner manifests: YAML text to validated ``PartnerManifest`` values, with
/// `path:line:column` diagnostics.
///
/// Every input is safe to load: the loader checks size and encoding before the text reaches
/// libyaml, and reads libyaml's events in one pass that refuses anchors and aliases where they
/// appear (never expanding one), stops at nesting deeper than 64 levels and never recurses, so it
/// returns promptly whatever it is given.
public enum ManifestLoader {
    /// Manifests are small; a bigger file is refused before it is parsed.
    static let maxBytes = 1_048_576

    /// Parses and validates one manifest's bytes. `path` is used in diagnostics only.
    ///
    /// - Parameter adapters: the compiled adapters `pull.adapter` may name, with their parameters.
    public static func load(
        bytes: [UInt8],
        path: String,
        adapters: [AdapterDescriptor] = AdapterDescriptor.builtIn
    ) -> Result<PartnerManifest, ManifestErrors> {
        let checked = check(bytes: bytes, path: path, adapters: adapters)
        if let manifest = checked.manifest { return .success(manifest) }
        return .failure(ManifestErrors(diagnostics: checked.diagnostics))
    }

    /// Loads files and folders. A folder contributes its `*.yaml` and `*.yml` files (not those
    /// whose name starts with `.`), sorted by name, not recursively. A path named twice is
    /// examined once.
    ///
    /// Reports every problem of every file, and an `id` or `source_domain` that repeats an
    /// earlier file's (at the later file's value, naming the earlier `file:line:column`).
    /// A path that can't be read is a diagnostic at line 1, column 1.
    ///
    /// - Parameter adapters: the compiled adapters `pull.adapter` may name, with their parameters.
    public static func load(paths: [String], adapters: [AdapterDescriptor] = AdapterDescriptor.builtIn) -> ManifestSet {
        load(files: YAMLFiles.expand(paths, maxBytes: maxBytes), adapters: adapters)
    }

    /// Loads manifests compiled into the binary (by the build plugin), exactly as ``load(paths:adapters:)``
    /// loads files: an edge service that can't read files at run time gets the same partners and
    /// the same diagnostics.
    public static func load(
        embedded manifests: [EmbeddedManifest],
        adapters: [AdapterDescriptor] = AdapterDescriptor.builtIn
    ) -> ManifestSet {
        load(
            files: manifests.map { YAMLFiles.File(path: $0.path, contents: .success(Array($0.text.utf8))) },
            adapters: adapters
        )
    }

    private static func load(files: [YAMLFiles.File], adapters: [AdapterDescriptor]) -> ManifestSet {
        var set = ManifestSet()
        /// Where each partner id and source_domain was first used, by kind and value.
        var firstUses: [String: String] = [:]
        var examined: Set<String> = []
        for file in files {
            // A file named twice (as itself and through its folder) is checked once.
            guard examined.insert(file.path).inserted else { continue }
            set.files.append(file.path)
            let bytes: [UInt8]
            switch file.contents {
            case .success(let contents): bytes = contents
            case .failure(let problem):
                set.diagnostics.append(
                    ManifestDiagnostic(path: file.path, line: 1, column: 1, message: problem.manifestMessage)
                )
                continue
            }
            let checked = check(bytes: bytes, path: file.path, adapters: adapters)
            set.diagnostics += checked.diagnostics
            var duplicate = false
            for (what, found) in [
                ("partner id", checked.validator.id), ("source_domain", checked.validator.sourceDomain),
            ] {
                guard let (value, position) = found else { continue }
                let key = what + "\u{0}" + value
                guard let earlier = firstUses[key] else {
                    firstUses[key] = "\(file.path):\(position.line):\(position.column)"
                    continue
                }
                let diagnostic = ManifestDiagnostic(
                    path: file.path,
                    line: position.line,
                    column: position.column,
                    message: "duplicate \(what) \(Quote.text(value)); already used at \(earlier)"
                )
                set.diagnostics.append(diagnostic)
                duplicate = true
            }
            if let manifest = checked.manifest, !duplicate {
                set.manifests.append(manifest)
            }
        }
        set.diagnostics.sort(by: ManifestDiagnostic.sourceOrder)
        return set
    }

    /// At most this many diagnostics are reported per file; one more says how many were left out.
    static let maxDiagnosticsPerFile = 100

    /// One file's manifest, when valid, and its diagnostics; the validator knows its `id` and
    /// `source_domain` when each is valid on its own.
    private static func check(
        bytes: [UInt8],
        path: String,
        adapters: [AdapterDescriptor]
    ) -> (manifest: PartnerManifest?, diagnostics: [ManifestDiagnostic], validator: ManifestValidator) {
        var validator = ManifestValidator(path: path, adapters: adapters)
        var manifest: PartnerManifest?
        switch YAMLReader.read(bytes, maxBytes: maxBytes) {
        case .failed(let problems):
            for problem in problems { validator.error(problem.position, problem.manifestMessage) }
        case .document(let root, let tags):
            for tag in tags { validator.error(tag.position, tag.manifestMessage) }
            manifest = validator.validate(root)
        }
        var diagnostics = validator.problems.map {
            ManifestDiagnostic(
                path: path,
                line: $0.position.line,
                column: $0.position.column,
                message: Quote.line($0.message)
            )
        }
        diagnostics.sort(by: ManifestDiagnostic.sourceOrder)
        if diagnostics.count > maxDiagnosticsPerFile {
            let next = diagnostics[maxDiagnosticsPerFile]
            let more = diagnostics.count - maxDiagnosticsPerFile + validator.omitted
            diagnostics.removeSubrange(maxDiagnosticsPerFile...)
            diagnostics.append(
                ManifestDiagnostic(
                    path: path,
                    line: next.line,
                    column: next.column,
                    message: "\(more) more problem\(more == 1 ? "" : "s") in this file not shown"
                )
            )
        }
        return (manifest, diagnostics, validator)
    }
}
