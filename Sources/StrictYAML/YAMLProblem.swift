/// Why a document was refused or could not be read, and where. The reader states what it found;
/// the module reading a kind of document (a manifest, say) words the message for its users.
package struct YAMLProblem: Error, Sendable, Equatable {
    package enum Kind: Sendable, Equatable {
        /// The text is more than `limit` bytes.
        case tooLarge(bytes: Int, limit: Int)
        /// Not UTF-8: `byte` can't appear where it is.
        case notUTF8(byte: UInt8)
        /// A character YAML doesn't allow (a control character, say), by its code point.
        case disallowedCharacter(UInt32)
        /// An anchor, as written (`&name`).
        case anchor(String)
        /// An alias, as written (`*name`).
        case alias(String)
        /// A tag, as usually written (`!!str`, `!local`, `!<uri>`).
        case tag(String)
        /// A second document in the stream.
        case secondDocument
        /// Collections nested deeper than `limit`.
        case tooDeep(limit: Int)
        /// A tab used to indent.
        case tabIndentation
        /// libyaml's scanner or parser stopped: its own problem text, and the construct it was in
        /// with where that started, when it says.
        case syntax(String, context: String?, contextPosition: SourcePosition?)
        /// libyaml's reader stopped at byte `offset` (unexpected: the text is checked first).
        case unreadable(String, offset: Int)
        case outOfMemory
    }

    package var position: SourcePosition
    package var kind: Kind

    package init(_ kind: Kind, at position: SourcePosition) {
        self.kind = kind
        self.position = position
    }
}
