/// One node of a YAML document, as ``YAMLReader`` builds it from libyaml's events: a scalar, a
/// list or a mapping, with where it starts. There are no aliases: the reader refuses them (and
/// anchors) where they appear.
package struct Node: Sendable {
    package enum Content: Sendable {
        case scalar(String, Style)
        case list([Node])
        case mapping([Pair])
    }

    package enum Style: Equatable, Sendable {
        case plain
        case quoted
        case block
    }

    /// One key and its value, in the order written.
    package struct Pair: Sendable {
        package var key: Node
        package var value: Node
    }

    package var content: Content
    /// Where the node starts (at its tag, when it has one), as libyaml marks it.
    package var position: SourcePosition
    /// Where a scalar's first character is written, when the text is the value verbatim (a plain
    /// scalar on one line): messages about part of a value can point into it.
    package var verbatimStart: SourcePosition?

    package init(content: Content, position: SourcePosition, verbatimStart: SourcePosition? = nil) {
        self.content = content
        self.position = position
        self.verbatimStart = verbatimStart
    }

    /// An empty document's root: null, at the start.
    package static let null = Node(content: .scalar("", .plain), position: .start)

    /// What a scalar means (``ScalarMeaning``); `nil` for a list or a mapping.
    package var meaning: ScalarMeaning? {
        if case .scalar(let string, let style) = content { ScalarMeaning(string, style: style) } else { nil }
    }

    /// A scalar's text, unless it means null.
    package var text: String? {
        guard case .scalar(let string, _) = content, meaning != .null else { return nil }
        return string
    }
}
