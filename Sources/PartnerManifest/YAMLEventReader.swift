import CLibYAML

/// One event of libyaml's parser, with its marks made 1-based.
struct YAMLEvent {
    enum Kind {
        case streamStart
        case streamEnd
        case documentStart
        case documentEnd
        case alias(String)
        case scalar(String, Node.Scalar.Style)
        case sequenceStart(flow: Bool)
        case sequenceEnd
        case mappingStart(flow: Bool)
        case mappingEnd
    }

    var kind: Kind
    var anchor: String?
    /// The tag as libyaml resolved it (`!!str` is `tag:yaml.org,2002:str`).
    var tag: String?
    var start: SourcePosition
    /// Just after the event's last character.
    var end: SourcePosition
}

/// What stopped libyaml: its own problem text and mark, and the context it names.
struct YAMLParseError: Error {
    var position: SourcePosition
    /// libyaml's character index of `position`, when it gives one.
    var characterIndex: Int? = nil
    var problem: String
    /// "while parsing a flow sequence" and where that started, when libyaml says.
    var context: (text: String, position: SourcePosition)? = nil
}

/// libyaml's event parser (`yaml_parser_parse`) over one UTF-8 buffer: events one at a time,
/// never a document tree, so nothing is composed or expanded here.
final class YAMLEventReader {
    private let parser: UnsafeMutablePointer<yaml_parser_t>
    /// libyaml reads the input in place: a copy that lives as long as the parser.
    private let input: UnsafeMutableBufferPointer<UInt8>
    /// False when libyaml had no memory for its first buffers.
    private let initialized: Bool

    init(_ bytes: [UInt8]) {
        input = .allocate(capacity: max(bytes.count, 1))
        _ = input.initialize(from: bytes)
        parser = .allocate(capacity: 1)
        initialized = yaml_parser_initialize(parser) == 1
        yaml_parser_set_input_string(parser, input.baseAddress, bytes.count)
        // Always UTF-8 (checked before): never guess UTF-16 from a byte order mark.
        yaml_parser_set_encoding(parser, YAML_UTF8_ENCODING)
    }

    deinit {
        yaml_parser_delete(parser)
        parser.deallocate()
        input.deallocate()
    }

    /// The next event; after `.streamEnd` or an error, don't ask again.
    func next() throws(YAMLParseError) -> YAMLEvent {
        guard initialized else { throw YAMLParseError(position: .start, problem: "out of memory") }
        var event = yaml_event_t()
        guard yaml_parser_parse(parser, &event) == 1 else { throw error() }
        defer { yaml_event_delete(&event) }
        let start = Self.position(event.start_mark)
        let end = Self.position(event.end_mark)
        switch event.type {
        case YAML_STREAM_START_EVENT:
            return YAMLEvent(kind: .streamStart, start: start, end: end)
        case YAML_DOCUMENT_START_EVENT:
            return YAMLEvent(kind: .documentStart, start: start, end: end)
        case YAML_DOCUMENT_END_EVENT:
            return YAMLEvent(kind: .documentEnd, start: start, end: end)
        case YAML_ALIAS_EVENT:
            return YAMLEvent(kind: .alias(Self.string(event.data.alias.anchor) ?? ""), start: start, end: end)
        case YAML_SCALAR_EVENT:
            let scalar = event.data.scalar
            let value = String(decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self)
            let style: Node.Scalar.Style =
                switch scalar.style {
                case YAML_PLAIN_SCALAR_STYLE: .plain
                case YAML_LITERAL_SCALAR_STYLE, YAML_FOLDED_SCALAR_STYLE: .block
                default: .quoted
                }
            return YAMLEvent(
                kind: .scalar(value, style),
                anchor: Self.string(scalar.anchor),
                tag: Self.string(scalar.tag),
                start: start,
                end: end
            )
        case YAML_SEQUENCE_START_EVENT:
            let sequence = event.data.sequence_start
            return YAMLEvent(
                kind: .sequenceStart(flow: sequence.style == YAML_FLOW_SEQUENCE_STYLE),
                anchor: Self.string(sequence.anchor),
                tag: Self.string(sequence.tag),
                start: start,
                end: end
            )
        case YAML_SEQUENCE_END_EVENT:
            return YAMLEvent(kind: .sequenceEnd, start: start, end: end)
        case YAML_MAPPING_START_EVENT:
            let mapping = event.data.mapping_start
            return YAMLEvent(
                kind: .mappingStart(flow: mapping.style == YAML_FLOW_MAPPING_STYLE),
                anchor: Self.string(mapping.anchor),
                tag: Self.string(mapping.tag),
                start: start,
                end: end
            )
        case YAML_MAPPING_END_EVENT:
            return YAMLEvent(kind: .mappingEnd, start: start, end: end)
        default:
            // YAML_NO_EVENT and YAML_STREAM_END_EVENT: nothing follows either.
            return YAMLEvent(kind: .streamEnd, start: start, end: end)
        }
    }

    /// libyaml's error, as it states it.
    private func error() -> YAMLParseError {
        let state = parser.pointee
        switch state.error {
        case YAML_SCANNER_ERROR, YAML_PARSER_ERROR:
            var context: (String, SourcePosition)?
            if let text = state.context.map({ String(cString: $0) }), !text.isEmpty {
                context = (text, Self.position(state.context_mark))
            }
            return YAMLParseError(
                position: Self.position(state.problem_mark),
                characterIndex: Int(state.problem_mark.index),
                problem: state.problem.map { String(cString: $0) } ?? "unknown error",
                context: context
            )
        case YAML_MEMORY_ERROR:
            return YAMLParseError(position: .start, problem: "out of memory")
        default:
            // A reader error: the text was checked to be UTF-8 before, so this is unexpected.
            let problem = state.problem.map { String(cString: $0) } ?? "unknown error"
            return YAMLParseError(position: .start, problem: "\(problem) (at byte \(state.problem_offset))")
        }
    }

    private static func position(_ mark: yaml_mark_t) -> SourcePosition {
        SourcePosition(line: Int(mark.line) + 1, column: Int(mark.column) + 1)
    }

    private static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        pointer.map { String(cString: $0) }
    }
}
