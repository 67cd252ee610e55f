import CLibYAML

/// Builds one manifest's node tree from libyaml's events (`yaml_parser_parse`), in a single pass
/// with an explicit stack of open collections that never recurses and never expands anything:
///
/// - an anchor or alias is refused at its event (an alias is never resolved, so an alias bomb
///   costs what its text costs), and so is the document; tags are noted for the validator;
/// - depth is counted on collection start and end events, and the pass stops past ``maxDepth``;
/// - a second document, or a parse error with libyaml's own text and mark, ends the pass.
enum ManifestComposer {
    /// Nesting deeper than this is refused.
    static let maxDepth = 64
    /// At most this many anchors and aliases (and, separately, tags) are reported per file.
    static let maxRefusals = 20

    /// A problem found before validation (in the text or its YAML), where it is.
    struct Problem: Error {
        var position: SourcePosition
        var message: String
    }

    /// A document, or what stopped it.
    enum Outcome {
        /// The root node (null for an empty file, or only comments), and the tags found in it
        /// (refused, beside the validator's findings).
        case document(Node, tags: [Problem])
        case failed([Problem])
    }

    static func compose(_ text: [UInt8]) -> Outcome {
        guard !text.isEmpty else { return .document(.null, tags: []) }
        // libyaml keeps pointers into the parser itself: it must not move.
        let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
        defer { parser.deallocate() }
        guard yaml_parser_initialize(parser) == 1 else {
            return .failed([Problem(position: .start, message: "invalid YAML: out of memory")])
        }
        defer { yaml_parser_delete(parser) }
        return text.withUnsafeBufferPointer { input in
            yaml_parser_set_input_string(parser, input.baseAddress, input.count)
            // Always UTF-8 (checked before): never guess UTF-16 from a byte order mark.
            yaml_parser_set_encoding(parser, YAML_UTF8_ENCODING)
            return compose(parser, text)
        }
    }

    private static func compose(_ parser: UnsafeMutablePointer<yaml_parser_t>, _ text: [UInt8]) -> Outcome {
        var refusals: [Problem] = []
        var tags: [Problem] = []
        var documents = 0
        /// The open lists and mappings, innermost last: where each starts and its nodes so far (a
        /// mapping's keys and values alternate).
        var open: [(position: SourcePosition, isMapping: Bool, nodes: [Node])] = []
        var root: Node?
        func add(_ node: Node) {
            if open.isEmpty { root = node } else { open[open.count - 1].nodes.append(node) }
        }

        while true {
            var event = yaml_event_t()
            guard yaml_parser_parse(parser, &event) == 1 else {
                return .failed(refusals + [problem(parser.pointee, in: text)])
            }
            defer { yaml_event_delete(&event) }
            let start = position(event.start_mark)
            let end = position(event.end_mark)
            let (anchor, tag): (UnsafeMutablePointer<yaml_char_t>?, UnsafeMutablePointer<yaml_char_t>?) =
                switch event.type {
                case YAML_SCALAR_EVENT: (event.data.scalar.anchor, event.data.scalar.tag)
                case YAML_SEQUENCE_START_EVENT: (event.data.sequence_start.anchor, event.data.sequence_start.tag)
                case YAML_MAPPING_START_EVENT: (event.data.mapping_start.anchor, event.data.mapping_start.tag)
                default: (nil, nil)
                }
            if let anchor, refusals.count < maxRefusals {
                refusals.append(Problem(position: start, message: refusal("anchors", "&" + String(cString: anchor))))
            }
            if let tag, tags.count < maxRefusals {
                let written = written(String(cString: tag))
                tags.append(
                    Problem(
                        position: start,
                        message:
                            "YAML tags (\(Quote.text(written))) are not allowed in manifests; write the plain value"
                    )
                )
            }
            switch event.type {
            case YAML_STREAM_START_EVENT, YAML_DOCUMENT_END_EVENT:
                continue
            case YAML_DOCUMENT_START_EVENT:
                documents += 1
                guard documents == 1 else {
                    let message =
                        "a manifest holds one YAML document; found a second one here "
                        + "(remove the '---' or '...' marker, or put each partner in its own file)"
                    return .failed(refusals + [Problem(position: start, message: message)])
                }
            case YAML_ALIAS_EVENT:
                if refusals.count < maxRefusals {
                    let name = "*" + String(cString: event.data.alias.anchor)
                    refusals.append(Problem(position: start, message: refusal("aliases", name)))
                }
                // Stands in for the alias, so that the tree keeps its shape; the document is refused.
                add(Node(content: .scalar("", .plain), position: start))
            case YAML_SCALAR_EVENT:
                add(scalar(event, start: start, end: end))
            case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                let isMapping = event.type == YAML_MAPPING_START_EVENT
                guard open.count < maxDepth else {
                    let flow =
                        isMapping
                        ? event.data.mapping_start.style == YAML_FLOW_MAPPING_STYLE
                        : event.data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE
                    // At its own `[`, `{`, `-` or first key, after any anchor or tag: a flow
                    // collection's event ends just after its bracket, a block collection's where it starts.
                    var at = start
                    if anchor != nil || tag != nil {
                        at = flow ? SourcePosition(line: end.line, column: max(1, end.column - 1)) : end
                    }
                    let problem = Problem(position: at, message: "nesting deeper than \(maxDepth) levels")
                    return .failed(refusals + [problem])
                }
                open.append((start, isMapping, []))
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                guard let closed = open.popLast() else { continue }
                let content = closed.isMapping ? .mapping(pairs(closed.nodes)) : Node.Content.list(closed.nodes)
                add(Node(content: content, position: closed.position))
            default:
                // The stream's end (YAML_NO_EVENT too: nothing follows either).
                if !refusals.isEmpty { return .failed(refusals) }
                return .document(root ?? .null, tags: tags)
            }
            // The document is refused already: the rest is read only for more of the same.
            if refusals.count >= maxRefusals { return .failed(refusals) }
        }
    }

    private static func refusal(_ kind: String, _ text: String) -> String {
        "YAML \(kind) (\(Quote.text(text))) are not allowed in manifests; write each value out in full"
    }

    private static func position(_ mark: yaml_mark_t) -> SourcePosition {
        SourcePosition(line: Int(mark.line) + 1, column: Int(mark.column) + 1)
    }

    private static func scalar(_ event: yaml_event_t, start: SourcePosition, end: SourcePosition) -> Node {
        let scalar = event.data.scalar
        let value = String(decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self)
        let style: Node.Style =
            switch scalar.style {
            case YAML_PLAIN_SCALAR_STYLE: .plain
            case YAML_LITERAL_SCALAR_STYLE, YAML_FOLDED_SCALAR_STYLE: .block
            default: .quoted
            }
        var node = Node(content: .scalar(value, style), position: start)
        // A plain scalar on one line is its text: it ends at the event's end, after any tag.
        let column = end.column - value.unicodeScalars.count
        if style == .plain, start.line == end.line, column >= start.column {
            node.verbatimStart = SourcePosition(line: end.line, column: column)
        }
        return node
    }

    /// A mapping's keys and values, which alternate.
    private static func pairs(_ nodes: [Node]) -> [Node.Pair] {
        stride(from: 0, to: nodes.count - 1, by: 2).map { Node.Pair(key: nodes[$0], value: nodes[$0 + 1]) }
    }

    /// A tag as it is usually written: libyaml has expanded `!!` to the YAML namespace.
    private static func written(_ tag: String) -> String {
        let yamlNamespace = "tag:yaml.org,2002:"
        if tag.hasPrefix(yamlNamespace) { return "!!" + tag.dropFirst(yamlNamespace.count) }
        if tag.hasPrefix("!") { return tag }
        return "!<\(tag)>"
    }

    /// libyaml's error, as it states it.
    private static func problem(_ parser: yaml_parser_t, in text: [UInt8]) -> Problem {
        let description = parser.problem.map { String(cString: $0) } ?? "unknown error"
        switch parser.error {
        case YAML_SCANNER_ERROR, YAML_PARSER_ERROR:
            let at = position(parser.problem_mark)
            if isIndentingTab(at: Int(parser.problem_mark.index), in: text) {
                return Problem(position: at, message: "tab character in indentation; YAML indents with spaces only")
            }
            guard let context = parser.context.map({ String(cString: $0) }), !context.isEmpty else {
                return Problem(position: at, message: "invalid YAML: \(description)")
            }
            let contextAt = position(parser.context_mark)
            return Problem(
                position: at,
                message: "invalid YAML: \(description) (\(context) at line \(contextAt.line), "
                    + "column \(contextAt.column))"
            )
        case YAML_MEMORY_ERROR:
            return Problem(position: .start, message: "invalid YAML: out of memory")
        default:
            // A reader error: the text was checked to be UTF-8 before, so this is unexpected.
            let message = "invalid YAML: \(description) (at byte \(parser.problem_offset))"
            return Problem(position: .start, message: message)
        }
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
