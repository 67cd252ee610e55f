public import PartnerAdapterKit
import PullSyncKernel

/// Loads partner manifests: YAML text to validated ``PartnerManifest`` values, with
/// `path:line:column` diagnostics.
///
/// Every input is safe to load: the loader checks size and encoding before the text reaches
/// libyaml, and reads libyaml's events in one pass that refuses anchors and aliases where they
/// appear (never expanding one), stops at nesting deeper than 64 levels and never recurses, so it
/// returns promptly whatever it is given.
public enum ManifestLoader {
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
        load(files: ManifestFiles.expand(paths), adapters: adapters)
    }

    /// Loads manifests compiled into the binary (by the build plugin), exactly as ``load(paths:adapters:)``
    /// loads files: an edge service that can't read files at run time gets the same partners and
    /// the same diagnostics.
    public static func load(
        embedded manifests: [EmbeddedManifest],
        adapters: [AdapterDescriptor] = AdapterDescriptor.builtIn
    ) -> ManifestSet {
        load(
            files: manifests.map { ManifestFiles.File(path: $0.path, contents: .success(Array($0.text.utf8))) },
            adapters: adapters
        )
    }

    private static func load(files: [ManifestFiles.File], adapters: [AdapterDescriptor]) -> ManifestSet {
        var set = ManifestSet()
        var ids: [String: String] = [:]
        var sourceDomains: [String: String] = [:]
        var examined: Set<String> = []
        for file in files {
            // A file named twice (as itself and through its folder) is checked once.
            guard examined.insert(file.path).inserted else { continue }
            set.files.append(file.path)
            let bytes: [UInt8]
            switch file.contents {
            case .failure(let problem):
                set.diagnostics.append(
                    ManifestDiagnostic(path: file.path, line: 1, column: 1, message: problem.message)
                )
                continue
            case .success(let contents):
                bytes = contents
            }
            let checked = check(bytes: bytes, path: file.path, adapters: adapters)
            set.diagnostics += checked.diagnostics
            var duplicate = false
            if let (id, position) = checked.id {
                if let earlier = ids[id] {
                    set.diagnostics.append(
                        ManifestDiagnostic(
                            path: file.path,
                            line: position.line,
                            column: position.column,
                            message: "duplicate partner id \(Quote.text(id)); already used at \(earlier)"
                        )
                    )
                    duplicate = true
                } else {
                    ids[id] = "\(file.path):\(position.line):\(position.column)"
                }
            }
            if let (domain, position) = checked.sourceDomain {
                if let earlier = sourceDomains[domain] {
                    set.diagnostics.append(
                        ManifestDiagnostic(
                            path: file.path,
                            line: position.line,
                            column: position.column,
                            message: "duplicate source_domain \(Quote.text(domain)); already used at \(earlier)"
                        )
                    )
                    duplicate = true
                } else {
                    sourceDomains[domain] = "\(file.path):\(position.line):\(position.column)"
                }
            }
            if let manifest = checked.manifest, !duplicate {
                set.manifests.append(manifest)
            }
        }
        set.diagnostics.sort(by: ManifestDiagnostic.sourceOrder)
        return set
    }

    /// What checking one file found.
    private struct Checked {
        var manifest: PartnerManifest?
        var diagnostics: [ManifestDiagnostic] = []
        var id: (String, SourcePosition)?
        var sourceDomain: (String, SourcePosition)?
    }

    /// At most this many diagnostics are reported per file; one more says how many were left out.
    static let maxDiagnosticsPerFile = 100

    private static func check(bytes: [UInt8], path: String, adapters: [AdapterDescriptor]) -> Checked {
        func failed(_ problems: [ManifestComposer.Problem], omitted: Int = 0) -> Checked {
            var diagnostics = problems.map {
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
                let more = diagnostics.count - maxDiagnosticsPerFile + omitted
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
            return Checked(diagnostics: diagnostics)
        }

        let text: [UInt8]
        switch ManifestText.check(bytes) {
        case .success(let checked): text = checked
        case .failure(let problem): return failed([.init(position: problem.position, message: problem.message)])
        }

        let root: Node
        let tags: [ManifestComposer.Problem]
        switch ManifestComposer.compose(text) {
        case .empty:
            return failed([
                .init(position: .start, message: "empty manifest; expected a mapping with keys id, source_domain, pull")
            ])
        case .failed(let problems):
            return failed(problems)
        case .document(let node, let tagProblems):
            root = node
            tags = tagProblems
        }

        var validator = ManifestValidator(path: path, adapters: adapters)
        for tag in tags { validator.error(tag.position, tag.message) }
        let manifest = validator.validate(root)
        var checked = failed(validator.problems, omitted: validator.omitted)
        checked.manifest = validator.problems.isEmpty ? manifest : nil
        checked.id = validator.id.map { ($0.value, $0.position) }
        checked.sourceDomain = validator.sourceDomain.map { ($0.value, $0.position) }
        return checked
    }
}
