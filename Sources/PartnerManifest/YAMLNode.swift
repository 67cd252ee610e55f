/// One node of a manifest's YAML, as ``ManifestComposer`` builds it from libyaml's events: a
/// scalar, a list or a mapping, each with where it starts. There are no aliases: the composer
/// refuses them (and anchors) where they appear.
enum Node {
    case scalar(Scalar)
    case sequence(List)
    case mapping(Mapping)

    /// Where the node starts (at its tag, when it has one), as libyaml marks it.
    var position: SourcePosition {
        switch self {
        case .scalar(let scalar): scalar.position
        case .sequence(let list): list.position
        case .mapping(let mapping): mapping.position
        }
    }

    struct Scalar {
        enum Style: Equatable {
            case plain
            case quoted
            case block
        }

        var string: String
        var style: Style
        var position: SourcePosition
        /// Where the value's first character is written, when the text is the value verbatim (a
        /// plain scalar on one line): messages about part of a value can point into it.
        var verbatimStart: SourcePosition?
    }

    struct List: RandomAccessCollection {
        var position: SourcePosition
        var elements: [Node] = []

        var startIndex: Int { elements.startIndex }
        var endIndex: Int { elements.endIndex }
        subscript(index: Int) -> Node { elements[index] }
    }

    struct Mapping: RandomAccessCollection {
        /// One key and its value, in the order written.
        struct Pair {
            var key: Node
            var value: Node
            /// For a key written earlier in the same mapping: where it was first written.
            var firstDefinition: SourcePosition?
        }

        var position: SourcePosition
        var pairs: [Pair] = []

        var startIndex: Int { pairs.startIndex }
        var endIndex: Int { pairs.endIndex }
        subscript(index: Int) -> Pair { pairs[index] }
    }
}
