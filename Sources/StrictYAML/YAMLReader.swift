import CLibYAML

/// Reads one YAML document strictly, from libyaml's events (`yaml_parser_parse`): a node tree with
/// where each node starts, in a single pass with an explicit stack of open collections that never
/// recurses and never expands anything.
///
/// - The text is checked first: at most a size limit, UTF-8, only the characters YAML allows.
/// - An anchor or alias is refused at its event (an alias is never resolved, so an alias bomb
///   costs what its text costs), and so is the document; tags are reported beside the tree.
/// - Depth is counted on collection start and end events, and the pass stops past ``maxDepth``.
/// - A second document, or a parse error with libyaml's own text and mark, ends the pass.
package enum YAMLReader {
    /// Nesting deeper than this is refused.
    package static let maxDepth = 64
    /// At most this many anchors and aliases (and, separately, tags) are reported per document.
    package static let maxRefusals = 20

    /// A document, or what stopped it.
    package enum Outcome {
        /// The root node (null for an empty text, or only comments), and the tags found in it
        /// (to be refused beside what the caller finds in the tree).
        case document(Node, tags: [YAMLProblem])
        case failed([YAMLProblem])
    }

    /// Reads `input`, which may be at most `maxBytes` long.
    package static func read(_ input: [UInt8], maxBytes: Int) -> Outcome {
        let text: [UInt8]
        switch YAMLText.check(input, maxBytes: maxBytes) {
        case .success(let checked): text = checked
        case .failure(let problem): return .failed([problem])
        }
        guard !text.isEmpty else { return .document(.null, tags: []) }
        // libyaml keeps pointers into the parser itself: it must not move.
        let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
        defer { parser.deallocate() }
        guard yaml_parser_initialize(parser) == 1 else {
            return .failed([YAMLProblem(.outOfMemory, at: .start)])
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
        var refusals: [YAMLProblem] = []
        var tags: [YAMLProblem] = []
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
                refusals.append(YAMLProblem(.anchor("&" + String(cString: anchor)), at: start))
            }
            if let tag, tags.count < maxRefusals {
                tags.append(YAMLProblem(.tag(written(String(cString: tag))), at: start))
            }
            switch event.type {
            case YAML_STREAM_START_EVENT, YAML_DOCUMENT_END_EVENT:
                continue
            case YAML_DOCUMENT_START_EVENT:
                documents += 1
                guard documents == 1 else { return .failed(refusals + [YAMLProblem(.secondDocument, at: start)]) }
            case YAML_ALIAS_EVENT:
                if refusals.count < maxRefusals {
                    refusals.append(YAMLProblem(.alias("*" + String(cString: event.data.alias.anchor)), at: start))
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
                    return .failed(refusals + [YAMLProblem(.tooDeep(limit: maxDepth), at: at)])
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
    private static func problem(_ parser: yaml_parser_t, in text: [UInt8]) -> YAMLProblem {
        let description = parser.problem.map { String(cString: $0) } ?? "unknown error"
        switch parser.error {
        case YAML_SCANNER_ERROR, YAML_PARSER_ERROR:
            let at = position(parser.problem_mark)
            if isIndentingTab(at: Int(parser.problem_mark.index), in: text) {
                return YAMLProblem(.tabIndentation, at: at)
            }
            guard let context = parser.context.map({ String(cString: $0) }), !context.isEmpty else {
                return YAMLProblem(.syntax(description, context: nil, contextPosition: nil), at: at)
            }
            let kind = YAMLProblem.Kind.syntax(
                description,
                context: context,
                contextPosition: position(parser.context_mark)
            )
            return YAMLProblem(kind, at: at)
        case YAML_MEMORY_ERROR:
            return YAMLProblem(.outOfMemory, at: .start)
        default:
            return YAMLProblem(.unreadable(description, offset: Int(parser.problem_offset)), at: .start)
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
