/// Builds one manifest's node tree from libyaml's events, in a single pass that never recurses
/// and never expands anything:
///
/// - an anchor or alias is refused at its event (an alias is never resolved, so an alias bomb
///   costs what its text costs), and so is the document; tags are noted for the validator;
/// - depth is counted on collection start and end events, and the pass stops past ``maxDepth``;
/// - every repeated key is marked with where it was first written (the validator reports it);
/// - a second document, or a parse error with libyaml's own text and mark, ends the pass.
enum ManifestComposer {
    /// Nesting deeper than this is refused.
    static let maxDepth = 64
    /// At most this many anchors and aliases (and, separately, tags) are reported per file.
    static let maxRefusals = 20

    struct Problem {
        var position: SourcePosition
        var message: String
    }

    /// A document, or what stopped it.
    enum Outcome {
        /// No document: an empty file, or only comments.
        case empty
        /// The root node, and the tags found in it (refused, beside the validator's findings).
        case document(Node, tags: [Problem])
        case failed([Problem])
    }

    static func compose(_ text: [UInt8]) -> Outcome {
        var builder = NodeTreeBuilder()
        var refusals: [Problem] = []
        var tags: [Problem] = []
        var documents = 0
        let events = YAMLEventReader(text)
        while true {
            let event: YAMLEvent
            do {
                event = try events.next()
            } catch {
                return .failed(refusals + [problem(for: error, in: text)])
            }
            if let anchor = event.anchor, refusals.count < maxRefusals {
                refusals.append(
                    Problem(position: event.start, message: refusal("anchors", "&" + anchor))
                )
            }
            if let tag = event.tag, tags.count < maxRefusals {
                tags.append(
                    Problem(
                        position: event.start,
                        message: "YAML tags (\(Quote.text(written(tag)))) are not allowed in manifests; "
                            + "write the plain value"
                    )
                )
            }
            switch event.kind {
            case .streamStart, .documentEnd:
                continue
            case .streamEnd:
                if !refusals.isEmpty { return .failed(refusals) }
                guard let root = builder.root else { return .empty }
                return .document(root, tags: tags)
            case .documentStart:
                documents += 1
                guard documents == 1 else {
                    let message =
                        "a manifest holds one YAML document; found a second one here "
                        + "(remove the '---' or '...' marker, or put each partner in its own file)"
                    return .failed(refusals + [Problem(position: event.start, message: message)])
                }
            case .alias(let name):
                if refusals.count < maxRefusals {
                    refusals.append(Problem(position: event.start, message: refusal("aliases", "*" + name)))
                }
                // Stands in for the alias, so that the tree keeps its shape; the document is refused.
                builder.add(.scalar(Node.Scalar(string: "", style: .plain, position: event.start)))
            case .scalar(let value, let style):
                builder.add(.scalar(scalar(value, style, event)))
            case .sequenceStart(let flow), .mappingStart(let flow):
                guard builder.depth < maxDepth else {
                    let message = "nesting deeper than \(maxDepth) levels"
                    return .failed(refusals + [Problem(position: contentStart(event, flow: flow), message: message)])
                }
                if case .sequenceStart = event.kind {
                    builder.openList(at: event.start)
                } else {
                    builder.openMapping(at: event.start)
                }
            case .sequenceEnd, .mappingEnd:
                builder.close()
            }
            // The document is refused already: the rest is read only for more of the same.
            if refusals.count >= maxRefusals { return .failed(refusals) }
        }
    }

    private static func refusal(_ kind: String, _ text: String) -> String {
        "YAML \(kind) (\(Quote.text(text))) are not allowed in manifests; write each value out in full"
    }

    private static func scalar(_ value: String, _ style: Node.Scalar.Style, _ event: YAMLEvent) -> Node.Scalar {
        var scalar = Node.Scalar(string: value, style: style, position: event.start)
        // A plain scalar on one line is its text: it ends at the event's end, after any tag.
        if style == .plain, event.start.line == event.end.line {
            let column = event.end.column - value.unicodeScalars.count
            if column >= event.start.column {
                scalar.verbatimStart = SourcePosition(line: event.end.line, column: column)
            }
        }
        return scalar
    }

    /// Where a collection's own `[`, `{`, `-` or first key is, after any anchor or tag: a flow
    /// collection's event ends just after its bracket, a block collection's where it starts.
    private static func contentStart(_ event: YAMLEvent, flow: Bool) -> SourcePosition {
        guard event.anchor != nil || event.tag != nil else { return event.start }
        return flow ? SourcePosition(line: event.end.line, column: max(1, event.end.column - 1)) : event.end
    }

    /// A tag as it is usually written: libyaml has expanded `!!` to the YAML namespace.
    private static func written(_ tag: String) -> String {
        let yamlNamespace = "tag:yaml.org,2002:"
        if tag.hasPrefix(yamlNamespace) { return "!!" + tag.dropFirst(yamlNamespace.count) }
        if tag.hasPrefix("!") { return tag }
        return "!<\(tag)>"
    }

    private static func problem(for error: YAMLParseError, in text: [UInt8]) -> Problem {
        if let index = error.characterIndex, isIndentingTab(at: index, in: text) {
            return Problem(position: error.position, message: "tab character in indentation; YAML indents with spaces only")
        }
        guard let context = error.context else {
            return Problem(position: error.position, message: "invalid YAML: \(error.problem)")
        }
        return Problem(
            position: error.position,
            message: "invalid YAML: \(error.problem) (\(context.text) at line \(context.position.line), "
                + "column \(context.position.column))"
        )
    }

    /// Whether libyaml stopped at a tab with only blanks before it on its line: a tab used to
    /// indent, which YAML never allows (libyaml says only that it "cannot start any token").
    private static func isIndentingTab(at index: Int, in text: [UInt8]) -> Bool {
        // libyaml's mark index counts characters (a CR LF counts two): find the byte.
        var characters = -1
        var offset: Int?
        for (candidate, byte) in text.enumerated() where byte & 0xC0 != 0x80 {
            characters += 1
            if characters == index {
                offset = candidate
                break
            }
        }
        guard var start = offset, text[start] == UInt8(ascii: "\t") else { return false }
        while start > 0, text[start - 1] == UInt8(ascii: " ") || text[start - 1] == UInt8(ascii: "\t") {
            start -= 1
        }
        return start == 0 || text[start - 1] == UInt8(ascii: "\n") || text[start - 1] == UInt8(ascii: "\r")
    }
}
