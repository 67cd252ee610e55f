/// Assembles ``Node`` values from events in order, with an explicit stack of open collections
/// (never recursion), marking each repeated key with where it was first written.
struct NodeTreeBuilder {
    /// An open list or mapping. Mutated in place on the stack, so appending never copies.
    private struct Open {
        var isMapping: Bool
        var position: SourcePosition
        var elements: [Node] = []
        var pairs: [Node.Mapping.Pair] = []
        /// A mapping's key, waiting for its value.
        var pendingKey: Node?
        /// A mapping's scalar keys so far, and where each was first written.
        var keys: [String: SourcePosition] = [:]
    }

    private var stack: [Open] = []
    /// The document's root, once complete.
    private(set) var root: Node?

    /// Collections open around the next node.
    var depth: Int { stack.count }

    mutating func openList(at position: SourcePosition) {
        stack.append(Open(isMapping: false, position: position))
    }

    mutating func openMapping(at position: SourcePosition) {
        stack.append(Open(isMapping: true, position: position))
    }

    mutating func close() {
        guard let open = stack.popLast() else { return }
        if open.isMapping {
            add(.mapping(Node.Mapping(position: open.position, pairs: open.pairs)))
        } else {
            add(.sequence(Node.List(position: open.position, elements: open.elements)))
        }
    }

    mutating func add(_ node: Node) {
        let top = stack.count - 1
        guard top >= 0 else {
            root = node
            return
        }
        guard stack[top].isMapping else {
            stack[top].elements.append(node)
            return
        }
        guard let key = stack[top].pendingKey else {
            stack[top].pendingKey = node
            return
        }
        var firstDefinition: SourcePosition?
        if case .scalar(let scalar) = key {
            firstDefinition = stack[top].keys[scalar.string]
            if firstDefinition == nil { stack[top].keys[scalar.string] = scalar.position }
        }
        stack[top].pairs.append(.init(key: key, value: node, firstDefinition: firstDefinition))
        stack[top].pendingKey = nil
    }
}
