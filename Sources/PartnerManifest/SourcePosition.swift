/// A 1-based line and column; columns count Unicode scalars, as libyaml's marks do.
struct SourcePosition: Hashable, Sendable {
    var line: Int
    var column: Int

    static let start = SourcePosition(line: 1, column: 1)
}
