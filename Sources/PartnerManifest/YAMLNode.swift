/// One node of a manifest's YAML, as ``ManifestComposer`` builds it from libyaml's events: a
/// scalar, a list or a mapping, with where it starts. There are no aliases: the composer refuses
/// them (and anchors) where they appear.
struct Node: Sendable {
    enum Content: Sendable {
        case scalar(String, Style)
        case list([Node])
        case mapping([Pair])
    }

    enum Style: Equatable, Sendable {
        case plain
        case quoted
        case block
    }

    /// One key and its value, in the order written.
    struct Pair: Sendable {
        var key: Node
        var value: Node
    }

    var content: Content
    /// Where the node starts (at its tag, when it has one), as libyaml marks it.
    var position: SourcePosition
    /// Where a scalar's first character is written, when the text is the value verbatim (a plain
    /// scalar on one line): messages about part of a value can point into it.
    var verbatimStart: SourcePosition?

    /// An empty document's root: null, at the start.
    static let null = Node(content: .scalar("", .plain), position: .start)

    /// What a scalar means (``ScalarMeaning``); `nil` for a list or a mapping.
    var meaning: ScalarMeaning? {
        if case .scalar(let string, let style) = content { ScalarMeaning(string, style: style) } else { nil }
    }

    /// A scalar's text, unless it means null.
    var text: String? {
        guard case .scalar(let string, _) = content, meaning != .null else { return nil }
        return string
    }

    /// "a mapping", "a list", "nothing", or the scalar quoted, for "…; found X" in messages.
    /// With `redacted`, a scalar is described by its kind only (for values that may be secrets).
    func found(redacted: Bool = false) -> String {
        switch content {
        case .mapping: "a mapping"
        case .list: "a list"
        case .scalar(let string, _): meaning == .null ? "nothing" : redacted ? "a string" : Quote.text(string)
        }
    }
}
