import Yams

/// Turns checked manifest text into one Yams node tree, or the diagnostics that say why not.
///
/// Yams refuses a mapping with a repeated key by throwing with the *first* occurrence's mark,
/// which would lose the rest of the file's problems. So the composer renames that occurrence
/// (in a copy of the text, keeping every line and column) and composes again; the validator
/// then reports each later occurrence, naming the first.
struct ManifestComposer {
    /// A document, or what stopped it.
    enum Outcome {
        /// No document: an empty file, or only comments.
        case empty
        /// The root node. `renamedKeys` maps the position of each renamed first occurrence of a
        /// repeated key to the key as written.
        case document(Node, renamedKeys: [SourcePosition: String])
        case failed([Problem])
    }

    struct Problem {
        var position: SourcePosition
        var message: String
    }

    /// Renaming stops after this many repeated keys (each costs one more parse)...
    static let maxRenames = 16
    /// ...or when the parses would read more than this many bytes in all.
    static let renameBudget = 2 * 1_048_576

    static func compose(_ text: SourceText) -> Outcome {
        var working = text.bytes
        var renamed: [SourcePosition: String] = [:]
        let maxRenames = min(Self.maxRenames, Self.renameBudget / max(text.bytes.count, 1))
        while true {
            do {
                let string = String(decoding: working, as: UTF8.self)
                guard let root = try Yams.compose(yaml: string, .basic, .default, .utf8) else { return .empty }
                return .document(root, renamedKeys: renamed)
            } catch YamlError.duplicatedKeysInMapping(let duplicates, let context) {
                let position = SourcePosition(line: context.mark.line, column: context.mark.column)
                let key = duplicates.first ?? ""
                guard renamed.count < maxRenames,
                    renamed[position] == nil,
                    rename(at: position, in: &working, serial: renamed.count)
                else {
                    // Without a tree, the later occurrences can't be found: report the first ones.
                    var firstOccurrences = renamed
                    firstOccurrences[position] = key
                    return .failed(
                        firstOccurrences.sorted { $0.key < $1.key }.map {
                            Problem(
                                position: $0.key,
                                message: "key \(Quote.text($0.value)) is repeated later in this mapping; "
                                    + "each key may appear once"
                            )
                        }
                    )
                }
                renamed[position] = key
            } catch let error as YamlError {
                return .failed([problem(for: error, in: text)])
            } catch {
                return .failed([Problem(position: .start, message: "cannot parse YAML: \(error)")])
            }
        }
    }

    /// Overwrites the one-line scalar key at `position` with private-use characters, keeping its
    /// length in characters (and its quotes), so that every mark after it stays the same.
    private static func rename(at position: SourcePosition, in bytes: inout [UInt8], serial: Int) -> Bool {
        // Earlier renames changed byte offsets (not lines or columns): locate in the current text.
        guard let current = try? SourceText(bytes), let start = current.offset(of: position) else { return false }
        let scanner = YAMLTokenScanner(bytes, target: start)
        guard let scalar = scanner.targetScalar, scalar.singleLine else { return false }
        var characters = 0
        for byte in bytes[start..<scalar.end] where byte & 0xC0 != 0x80 { characters += 1 }
        let fill = scalar.quoted ? characters - 2 : characters
        guard fill >= 1 else { return false }
        var replacement: [UInt8] = []
        for index in 0..<fill {
            let scalarValue = UInt32(0xE000 + (index == 0 ? serial + 1 : 0))
            replacement.append(contentsOf: String(Character(Unicode.Scalar(scalarValue)!)).utf8)
        }
        if scalar.quoted {
            replacement.insert(bytes[start], at: 0)
            replacement.append(bytes[scalar.end - 1])
        }
        bytes.replaceSubrange(start..<scalar.end, with: replacement)
        return true
    }

    /// Maps a Yams error to a position and a message that says what to do.
    private static func problem(for error: YamlError, in text: SourceText) -> Problem {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _):
            let position = SourcePosition(line: mark.line, column: mark.column)
            if problem.contains("Maximum nesting level") {
                return Problem(position: position, message: "nesting deeper than \(YAMLTokenScanner.maxDepth) levels")
            }
            if problem.contains("tab character")
                || (problem.contains("cannot start any token") && isTab(at: position, in: text))
            {
                return Problem(
                    position: position,
                    message: "tab character in indentation; YAML indents with spaces only"
                )
            }
            return Problem(position: position, message: "invalid YAML: \(problem)\(describe(context))")
        case .composer(let context, let problem, let mark, _):
            let position = SourcePosition(line: mark.line, column: mark.column)
            if problem.contains("another document") {
                return Problem(
                    position: position,
                    message: "a manifest holds one YAML document; found a second one here "
                        + "(remove the '---' or '...' marker, or put each partner in its own file)"
                )
            }
            return Problem(position: position, message: "invalid YAML: \(problem)\(describe(context))")
        case .reader(let problem, _, _, _):
            return Problem(position: .start, message: "cannot read as YAML text: \(problem)")
        case .memory:
            return Problem(position: .start, message: "out of memory while parsing YAML")
        default:
            return Problem(position: .start, message: "cannot parse YAML: \(error)")
        }
    }

    private static func describe(_ context: YamlError.Context?) -> String {
        guard let context, !context.text.isEmpty else { return "" }
        return " (\(context.text) at line \(context.mark.line), column \(context.mark.column))"
    }

    private static func isTab(at position: SourcePosition, in text: SourceText) -> Bool {
        guard let offset = text.offset(of: position), offset < text.bytes.count else { return false }
        return text.bytes[offset] == UInt8(ascii: "\t")
    }
}
