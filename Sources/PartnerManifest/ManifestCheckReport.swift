/// What a manifest check prints: `pullsync check` and `swift package lint-partners` both print
/// this, so that they agree line for line.
///
/// Valid: one summary line for standard output. Otherwise one `PATH:LINE:COLUMN: error: MESSAGE`
/// line per problem and a count, for standard error. A check that found no manifest at all fails
/// too, so that a check pointed at the wrong folder can't pass.
package struct ManifestCheckReport: Sendable {
    /// Every problem, including "no partner manifests found" for each path when nothing was found.
    package var diagnostics: [ManifestDiagnostic]
    /// For standard output: the summary line when valid, else empty.
    package var standardOutput: String
    /// For standard error: the diagnostics and their count, else empty.
    package var standardError: String

    /// Whether the check passed (exit status 0).
    package var isValid: Bool { diagnostics.isEmpty }

    /// - Parameters:
    ///   - paths: what was checked, as given.
    ///   - files: every file examined.
    ///   - diagnostics: every problem found.
    ///   - partners: valid partners.
    ///   - enabled: valid partners enabled for pull sync.
    package init(paths: [String], files: [String], diagnostics: [ManifestDiagnostic], partners: Int, enabled: Int) {
        var diagnostics = diagnostics
        if files.isEmpty && diagnostics.isEmpty {
            diagnostics = paths.map {
                ManifestDiagnostic(path: $0, line: 1, column: 1, message: "no partner manifests (*.yaml, *.yml) found")
            }
        }
        self.diagnostics = diagnostics
        guard diagnostics.isEmpty else {
            var output = ""
            for diagnostic in diagnostics { output += diagnostic.description + "\n" }
            let fileCount = Set(diagnostics.map(\.path)).count
            output += "\(Self.count(diagnostics.count, "problem")) in \(Self.count(fileCount, "file"))\n"
            self.standardOutput = ""
            self.standardError = output
            return
        }
        self.standardOutput =
            "\(Self.count(files.count, "file")) checked: \(Self.count(partners, "partner")) valid "
            + "(\(enabled) enabled for pull sync)\n"
        self.standardError = ""
    }

    /// The report for a loaded set, secrets unresolved.
    package init(paths: [String], set: ManifestSet) {
        self.init(
            paths: paths,
            files: set.files,
            diagnostics: set.diagnostics,
            partners: set.manifests.count,
            enabled: set.manifests.filter(\.pullEnabled).count
        )
    }

    private static func count(_ number: Int, _ noun: String) -> String {
        "\(number) \(noun)\(number == 1 ? "" : "s")"
    }
}
