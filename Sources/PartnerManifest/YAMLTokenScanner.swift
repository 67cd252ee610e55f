/// A pass over YAML text that follows libyaml's scanner token by token (without building
/// tokens) to find, before the text reaches Yams:
///
/// - anchors and aliases, which manifests refuse (an alias bomb must never be composed: Yams
///   hashes mapping keys, and an aliased key would be hashed exponentially many times);
/// - nesting deeper than ``maxDepth`` (Yams composes recursively);
/// - tags, which manifests refuse too (reported with the other problems);
/// - where a scalar token that starts at a given offset ends (to rename a duplicated key).
///
/// It mirrors libyaml's rules for where tokens start (flow levels, simple keys, indentation,
/// quoted, plain and block scalars, comments, tags), so it sees every `&` and `*` that libyaml
/// would read as an anchor or alias in any text libyaml accepts. It never recurses, and does a
/// bounded amount of work per character.
struct YAMLTokenScanner {
    /// Nesting deeper than this is refused.
    static let maxDepth = 64
    /// At most this many anchors, aliases and tags are reported.
    static let maxFindings = 20

    enum FindingKind: Equatable {
        case anchor
        case alias
        case tag
    }

    struct Finding: Equatable {
        var kind: FindingKind
        /// The token's text, indicator included (`&base`, `*base`, `!!int`).
        var text: String
        var position: SourcePosition
    }

    /// Anchors, aliases and tags, in order (at most ``maxFindings``).
    private(set) var findings: [Finding] = []
    /// Where nesting first went deeper than ``maxDepth``; scanning stops there.
    private(set) var tooDeep: SourcePosition?
    /// With `target` set: the end offset of the scalar token starting at `target`, and whether
    /// it is quoted.
    private(set) var targetScalar: (end: Int, quoted: Bool, singleLine: Bool)?

    private let bytes: [UInt8]
    private let target: Int?
    private var offset = 0
    /// libyaml's `mark.index`: characters, with CR LF counting two.
    private var index = 0
    private var line = 0
    private var column = 0
    private var flowLevel = 0
    private var indent = -1
    private var indents: [Int] = []
    private var simpleKeyAllowed = true
    private var simpleKeys: [SimpleKey] = [SimpleKey()]
    private var done = false

    private struct SimpleKey {
        var possible = false
        var line = 0
        var column = 0
        var index = 0
    }

    /// Scans `bytes` (valid UTF-8 without control characters, as ``SourceText`` guarantees).
    init(_ bytes: [UInt8], target: Int? = nil) {
        self.bytes = bytes
        self.target = target
        run()
    }

    /// Open collections: block collections (the indentation stack) plus flow collections.
    private var depth: Int { indents.count + flowLevel }

    private var position: SourcePosition { SourcePosition(line: line + 1, column: column + 1) }

    // MARK: - The token loop (yaml_parser_fetch_next_token)

    private mutating func run() {
        while !done {
            scanToNextToken()
            staleSimpleKeys()
            unrollIndent(column)
            if offset >= bytes.count { return }
            let byte = bytes[offset]
            if column == 0 && byte == UInt8(ascii: "%") {
                unrollIndent(-1)
                removeSimpleKey()
                simpleKeyAllowed = false
                while !isBreakOrEnd(offset) { skip() }
                continue
            }
            if column == 0 && isDocumentIndicator(offset) {
                unrollIndent(-1)
                removeSimpleKey()
                simpleKeyAllowed = false
                skip()
                skip()
                skip()
                continue
            }
            switch byte {
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                saveSimpleKey()
                let start = position
                flowLevel += 1
                simpleKeys.append(SimpleKey())
                checkDepth(at: start)
                simpleKeyAllowed = true
                skip()
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                removeSimpleKey()
                if flowLevel > 0 {
                    flowLevel -= 1
                    simpleKeys.removeLast()
                }
                simpleKeyAllowed = false
                skip()
            case UInt8(ascii: ","):
                removeSimpleKey()
                simpleKeyAllowed = true
                skip()
            case UInt8(ascii: "-") where isBlankOrBreakOrEnd(offset + 1):
                if flowLevel == 0 { rollIndent(column, at: position) }
                removeSimpleKey()
                simpleKeyAllowed = true
                skip()
            case UInt8(ascii: "?") where flowLevel > 0 || isBlankOrBreakOrEnd(offset + 1):
                if flowLevel == 0 { rollIndent(column, at: position) }
                removeSimpleKey()
                simpleKeyAllowed = flowLevel == 0
                skip()
            case UInt8(ascii: ":") where flowLevel > 0 || isBlankOrBreakOrEnd(offset + 1):
                fetchValue()
            case UInt8(ascii: "*"), UInt8(ascii: "&"):
                saveSimpleKey()
                simpleKeyAllowed = false
                scanAnchor(kind: byte == UInt8(ascii: "*") ? .alias : .anchor)
            case UInt8(ascii: "!"):
                saveSimpleKey()
                simpleKeyAllowed = false
                scanTag()
            case UInt8(ascii: "|") where flowLevel == 0, UInt8(ascii: ">") where flowLevel == 0:
                removeSimpleKey()
                simpleKeyAllowed = true
                scanBlockScalar()
            case UInt8(ascii: "'"), UInt8(ascii: "\""):
                saveSimpleKey()
                simpleKeyAllowed = false
                scanQuotedScalar(single: byte == UInt8(ascii: "'"))
            default:
                if startsPlainScalar(byte) {
                    saveSimpleKey()
                    simpleKeyAllowed = false
                    scanPlainScalar()
                } else {
                    // libyaml stops here ("found character that cannot start any token").
                    skip()
                }
            }
        }
    }

    private func startsPlainScalar(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "-"):
            return !isBlank(offset + 1)
        case UInt8(ascii: "?"), UInt8(ascii: ":"):
            return flowLevel == 0 && !isBlankOrBreakOrEnd(offset + 1)
        case UInt8(ascii: ","), UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "{"), UInt8(ascii: "}"),
            UInt8(ascii: "#"), UInt8(ascii: "&"), UInt8(ascii: "*"), UInt8(ascii: "!"), UInt8(ascii: "|"),
            UInt8(ascii: ">"), UInt8(ascii: "'"), UInt8(ascii: "\""), UInt8(ascii: "%"), UInt8(ascii: "@"),
            UInt8(ascii: "`"):
            return false
        default:
            return !isBlankOrBreakOrEnd(offset)
        }
    }

    // MARK: - Whitespace, comments, simple keys, indentation

    private mutating func scanToNextToken() {
        while true {
            if column == 0 && byte(at: offset) == 0xEF && byte(at: offset + 1) == 0xBB && byte(at: offset + 2) == 0xBF {
                skip()
            }
            while byte(at: offset) == UInt8(ascii: " ")
                || ((flowLevel > 0 || !simpleKeyAllowed) && byte(at: offset) == UInt8(ascii: "\t"))
            {
                skip()
            }
            if byte(at: offset) == UInt8(ascii: "#") {
                while !isBreakOrEnd(offset) { skip() }
            }
            guard isBreak(offset) else { return }
            skipLine()
            if flowLevel == 0 { simpleKeyAllowed = true }
        }
    }

    private mutating func staleSimpleKeys() {
        for level in simpleKeys.indices where simpleKeys[level].possible {
            if simpleKeys[level].line < line || simpleKeys[level].index + 1024 < index {
                simpleKeys[level].possible = false
            }
        }
    }

    private mutating func saveSimpleKey() {
        guard simpleKeyAllowed else { return }
        simpleKeys[simpleKeys.count - 1] = SimpleKey(possible: true, line: line, column: column, index: index)
    }

    private mutating func removeSimpleKey() {
        simpleKeys[simpleKeys.count - 1].possible = false
    }

    private mutating func fetchValue() {
        let key = simpleKeys[simpleKeys.count - 1]
        if key.possible {
            rollIndent(key.column, at: SourcePosition(line: key.line + 1, column: key.column + 1))
            simpleKeys[simpleKeys.count - 1].possible = false
            simpleKeyAllowed = false
        } else {
            if flowLevel == 0 { rollIndent(column, at: position) }
            simpleKeyAllowed = flowLevel == 0
        }
        skip()
    }

    private mutating func rollIndent(_ newColumn: Int, at start: SourcePosition) {
        guard flowLevel == 0, indent < newColumn else { return }
        indents.append(indent)
        indent = newColumn
        checkDepth(at: start)
    }

    private mutating func unrollIndent(_ newColumn: Int) {
        guard flowLevel == 0 else { return }
        while indent > newColumn, let previous = indents.popLast() {
            indent = previous
        }
    }

    private mutating func checkDepth(at start: SourcePosition) {
        if depth > Self.maxDepth, tooDeep == nil {
            tooDeep = start
            done = true
        }
    }

    // MARK: - Anchors, aliases, tags

    private mutating func scanAnchor(kind: FindingKind) {
        let start = position
        let startOffset = offset
        skip()
        while isAlphanumeric(offset) { skip() }
        record(kind, from: startOffset, at: start)
    }

    private mutating func scanTag() {
        let start = position
        let startOffset = offset
        skip()
        if byte(at: offset) == UInt8(ascii: "<") {
            skip()
            while isURICharacter(offset, verbatim: true) { skip() }
            if byte(at: offset) == UInt8(ascii: ">") { skip() }
        } else {
            // '!' handle '!' suffix, '!suffix' and '!' all consume URI characters.
            while isURICharacter(offset, verbatim: false) { skip() }
        }
        record(.tag, from: startOffset, at: start)
    }

    private mutating func record(_ kind: FindingKind, from startOffset: Int, at start: SourcePosition) {
        guard findings.count < Self.maxFindings else {
            if kind != .tag { done = true }
            return
        }
        let text = String(decoding: bytes[startOffset..<min(offset, startOffset + 64)], as: UTF8.self)
        findings.append(Finding(kind: kind, text: text, position: start))
    }

    // MARK: - Scalars

    private mutating func scanBlockScalar() {
        skip()
        var increment = 0
        if byte(at: offset) == UInt8(ascii: "+") || byte(at: offset) == UInt8(ascii: "-") {
            skip()
            if let digit = digit(at: offset) {
                increment = digit
                skip()
            }
        } else if let digit = digit(at: offset) {
            increment = digit
            skip()
            if byte(at: offset) == UInt8(ascii: "+") || byte(at: offset) == UInt8(ascii: "-") { skip() }
        }
        while isBlank(offset) { skip() }
        if byte(at: offset) == UInt8(ascii: "#") {
            while !isBreakOrEnd(offset) { skip() }
        }
        // libyaml stops with an error when anything else follows the header.
        guard isBreakOrEnd(offset) else { return }
        if isBreak(offset) { skipLine() }
        var blockIndent = 0
        if increment > 0 {
            blockIndent = indent >= 0 ? indent + increment : increment
        }
        guard scanBlockScalarBreaks(&blockIndent) else { return }
        while column == blockIndent && offset < bytes.count {
            while !isBreakOrEnd(offset) { skip() }
            if isBreak(offset) { skipLine() }
            guard scanBlockScalarBreaks(&blockIndent) else { return }
        }
    }

    private mutating func scanBlockScalarBreaks(_ blockIndent: inout Int) -> Bool {
        var maxIndent = 0
        while true {
            while (blockIndent == 0 || column < blockIndent) && byte(at: offset) == UInt8(ascii: " ") {
                skip()
            }
            if column > maxIndent { maxIndent = column }
            if (blockIndent == 0 || column < blockIndent) && byte(at: offset) == UInt8(ascii: "\t") {
                return false  // libyaml: "found a tab character where an indentation space is expected"
            }
            guard isBreak(offset) else { break }
            skipLine()
        }
        if blockIndent == 0 {
            blockIndent = max(maxIndent, indent + 1, 1)
        }
        return true
    }

    private mutating func scanQuotedScalar(single: Bool) {
        let startOffset = offset
        let startLine = line
        let quote = single ? UInt8(ascii: "'") : UInt8(ascii: "\"")
        skip()
        while true {
            if column == 0 && isDocumentIndicator(offset) { return }  // libyaml: unexpected document indicator
            if offset >= bytes.count { return }  // libyaml: unexpected end of stream
            while !isBlankOrBreakOrEnd(offset) {
                let byte = bytes[offset]
                if single && byte == quote && self.byte(at: offset + 1) == quote {
                    skip()
                    skip()
                } else if byte == quote {
                    break
                } else if !single && byte == UInt8(ascii: "\\") && isBreak(offset + 1) {
                    skip()
                    skipLine()
                    break
                } else if !single && byte == UInt8(ascii: "\\") {
                    guard let codeLength = escapeCodeLength(self.byte(at: offset + 1)) else { return }
                    skip()
                    skip()
                    for _ in 0..<codeLength {
                        guard isHexDigit(offset) else { return }
                        skip()
                    }
                } else {
                    skip()
                }
            }
            if byte(at: offset) == quote { break }
            while isBlank(offset) || isBreak(offset) {
                if isBlank(offset) { skip() } else { skipLine() }
            }
        }
        skip()
        noteScalar(from: startOffset, to: offset, quoted: true, singleLine: line == startLine)
    }

    private mutating func scanPlainScalar() {
        let startOffset = offset
        var endOffset = offset
        let startLine = line
        var endLine = line
        let plainIndent = indent + 1
        var leadingBlanks = false
        scanning: while true {
            if column == 0 && isDocumentIndicator(offset) { break }
            if byte(at: offset) == UInt8(ascii: "#") { break }
            while !isBlankOrBreakOrEnd(offset) {
                let byte = bytes[offset]
                if flowLevel > 0 && byte == UInt8(ascii: ":") && isFlowIndicatorOrQuestion(offset + 1) {
                    break scanning  // libyaml: "found unexpected ':'"
                }
                if (byte == UInt8(ascii: ":") && isBlankOrBreakOrEnd(offset + 1))
                    || (flowLevel > 0 && isFlowIndicator(offset))
                {
                    break
                }
                leadingBlanks = false
                skip()
                endOffset = offset
                endLine = line
            }
            guard isBlank(offset) || isBreak(offset) else { break }
            while isBlank(offset) || isBreak(offset) {
                if isBlank(offset) {
                    skip()
                } else {
                    skipLine()
                    leadingBlanks = true
                }
            }
            if flowLevel == 0 && column < plainIndent { break }
        }
        if leadingBlanks { simpleKeyAllowed = true }
        noteScalar(from: startOffset, to: endOffset, quoted: false, singleLine: endLine == startLine)
    }

    private mutating func noteScalar(from start: Int, to end: Int, quoted: Bool, singleLine: Bool) {
        guard let target, start == target else { return }
        targetScalar = (end, quoted, singleLine)
        done = true
    }

    private func escapeCodeLength(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "x"): 2
        case UInt8(ascii: "u"): 4
        case UInt8(ascii: "U"): 8
        case UInt8(ascii: "0"), UInt8(ascii: "a"), UInt8(ascii: "b"), UInt8(ascii: "t"), UInt8(ascii: "\t"),
            UInt8(ascii: "n"), UInt8(ascii: "v"), UInt8(ascii: "f"), UInt8(ascii: "r"), UInt8(ascii: "e"),
            UInt8(ascii: " "), UInt8(ascii: "\""), UInt8(ascii: "/"), UInt8(ascii: "\\"), UInt8(ascii: "N"),
            UInt8(ascii: "_"), UInt8(ascii: "L"), UInt8(ascii: "P"):
            0
        default: nil
        }
    }

    // MARK: - Characters (libyaml's IS_* macros)

    private func byte(at index: Int) -> UInt8 { index < bytes.count ? bytes[index] : 0 }

    private func isBlank(_ index: Int) -> Bool {
        byte(at: index) == UInt8(ascii: " ") || byte(at: index) == UInt8(ascii: "\t")
    }

    private func isBreak(_ index: Int) -> Bool {
        switch byte(at: index) {
        case 0x0A, 0x0D: true
        case 0xC2: byte(at: index + 1) == 0x85
        case 0xE2: byte(at: index + 1) == 0x80 && (byte(at: index + 2) == 0xA8 || byte(at: index + 2) == 0xA9)
        default: false
        }
    }

    private func isBreakOrEnd(_ index: Int) -> Bool { index >= bytes.count || isBreak(index) }

    private func isBlankOrBreakOrEnd(_ index: Int) -> Bool { isBlank(index) || isBreakOrEnd(index) }

    private func isAlphanumeric(_ index: Int) -> Bool {
        switch byte(at: index) {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "_"), UInt8(ascii: "-"):
            true
        default: false
        }
    }

    private func isHexDigit(_ index: Int) -> Bool {
        switch byte(at: index) {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "A")...UInt8(ascii: "F"),
            UInt8(ascii: "a")...UInt8(ascii: "f"):
            true
        default: false
        }
    }

    private func digit(at index: Int) -> Int? {
        let byte = byte(at: index)
        guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
        return Int(byte - UInt8(ascii: "0"))
    }

    private func isFlowIndicator(_ index: Int) -> Bool {
        switch byte(at: index) {
        case UInt8(ascii: ","), UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "{"), UInt8(ascii: "}"): true
        default: false
        }
    }

    private func isFlowIndicatorOrQuestion(_ index: Int) -> Bool {
        isFlowIndicator(index) || byte(at: index) == UInt8(ascii: "?")
    }

    private func isURICharacter(_ index: Int, verbatim: Bool) -> Bool {
        if isAlphanumeric(index) { return true }
        switch byte(at: index) {
        case UInt8(ascii: ";"), UInt8(ascii: "/"), UInt8(ascii: "?"), UInt8(ascii: ":"), UInt8(ascii: "@"),
            UInt8(ascii: "&"), UInt8(ascii: "="), UInt8(ascii: "+"), UInt8(ascii: "$"), UInt8(ascii: "."),
            UInt8(ascii: "%"), UInt8(ascii: "!"), UInt8(ascii: "~"), UInt8(ascii: "*"), UInt8(ascii: "'"),
            UInt8(ascii: "("), UInt8(ascii: ")"):
            return true
        case UInt8(ascii: ","), UInt8(ascii: "["), UInt8(ascii: "]"):
            return verbatim
        default:
            return false
        }
    }

    private func isDocumentIndicator(_ index: Int) -> Bool {
        let first = byte(at: index)
        guard first == UInt8(ascii: "-") || first == UInt8(ascii: ".") else { return false }
        return byte(at: index + 1) == first && byte(at: index + 2) == first && isBlankOrBreakOrEnd(index + 3)
    }

    private mutating func skip() {
        offset += offset < bytes.count ? SourceText.width(of: bytes[offset]) : 1
        index += 1
        column += 1
    }

    private mutating func skipLine() {
        if byte(at: offset) == 0x0D && byte(at: offset + 1) == 0x0A {
            offset += 2
            index += 2
        } else {
            offset += SourceText.width(of: bytes[offset])
            index += 1
        }
        column = 0
        line += 1
    }
}
