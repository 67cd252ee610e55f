/// One problem in a manifest, at a 1-based line and column, printed the way compilers do so that
/// editors and CI annotate the file: `PATH:LINE:COLUMN: error: MESSAGE`.
///
/// Messages name the key (`pull.ttl`) and say what would be valid. They never contain a secret value.
public struct ManifestDiagnostic: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file's path, as the caller gave it.
    public var path: String
    /// 1-based line.
    public var line: Int
    /// 1-based column, counted in Unicode scalars (as libyaml counts them).
    public var column: Int
    /// What is wrong and what would be valid.
    public var message: String

    package init(path: String, line: Int, column: Int, message: String) {
        self.path = path
        self.line = line
        self.column = column
        self.message = message
    }

    /// `PATH:LINE:COLUMN: error: MESSAGE`.
    public var description: String { "\(path):\(line):\(column): error: \(message)" }
}

/// Every problem found in one manifest, in source order.
public struct ManifestErrors: Error, Sendable, CustomStringConvertible {
    /// The diagnostics, sorted by line and column.
    public var diagnostics: [ManifestDiagnostic]

    package init(diagnostics: [ManifestDiagnostic]) {
        self.diagnostics = diagnostics
    }

    /// One diagnostic per line.
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

extension ManifestDiagnostic {
    /// Orders by path, then line, then column, then message (for stable output).
    static func sourceOrder(_ lhs: ManifestDiagnostic, _ rhs: ManifestDiagnostic) -> Bool {
        if lhs.path != rhs.path { return lhs.path.utf8.lexicographicallyPrecedes(rhs.path.utf8) }
        if lhs.line != rhs.line { return lhs.line < rhs.line }
        if lhs.column != rhs.column { return lhs.column < rhs.column }
        return lhs.message.utf8.lexicographicallyPrecedes(rhs.message.utf8)
    }
}
