import PartnerAdapterKit
import StrictYAML

// How the YAML reader's findings read to someone writing a manifest.

extension YAMLProblem {
    /// The diagnostic's text.
    var manifestMessage: String {
        switch kind {
        case .tooLarge(let bytes, let limit):
            Self.tooLarge(bytes: bytes, limit: limit)
        case .notUTF8(let byte):
            "manifest is not UTF-8 text (byte 0x\(hex(byte, digits: 2)) is invalid here); is this a binary file?"
        case .disallowedCharacter(let scalar):
            "manifest contains the control character U+\(hex(scalar, digits: 4)), "
                + "which YAML does not allow; is this a binary file?"
        case .anchor(let written):
            "YAML anchors (\(Quote.text(written))) are not allowed in manifests; write each value out in full"
        case .alias(let written):
            "YAML aliases (\(Quote.text(written))) are not allowed in manifests; write each value out in full"
        case .tag(let written):
            "YAML tags (\(Quote.text(written))) are not allowed in manifests; write the plain value"
        case .secondDocument:
            "a manifest holds one YAML document; found a second one here "
                + "(remove the '---' or '...' marker, or put each partner in its own file)"
        case .tooDeep(let limit):
            "nesting deeper than \(limit) levels"
        case .tabIndentation:
            "tab character in indentation; YAML indents with spaces only"
        case .syntax(let problem, let context?, let at?):
            "invalid YAML: \(problem) (\(context) at line \(at.line), column \(at.column))"
        case .syntax(let problem, _, _):
            "invalid YAML: \(problem)"
        case .unreadable(let problem, let offset):
            "invalid YAML: \(problem) (at byte \(offset))"
        case .outOfMemory:
            "invalid YAML: out of memory"
        }
    }

    /// A text, or a file, over the size limit.
    static func tooLarge(bytes: Int, limit: Int) -> String {
        "manifest is \(bytes) bytes; the limit is \(limit)"
    }

    private func hex(_ value: some BinaryInteger, digits: Int) -> String {
        let text = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}

extension YAMLFiles.ReadError {
    var manifestMessage: String {
        switch self {
        case .unreadable(let path, let reason): "cannot read \(path): \(reason)"
        case .tooLarge(let bytes, let limit): YAMLProblem.tooLarge(bytes: bytes, limit: limit)
        }
    }
}

extension Node {
    /// "a mapping", "a list", "nothing", or the scalar quoted, for "…; found X" in messages.
    /// With `redacted`, a scalar is described by its kind only (for values that may be secrets).
    func found(redacted: Bool = false) -> String {
        switch content {
        case .mapping: "a mapping"
        case .list: "a list"
        case .scalar(let string, _): meaning == .null ? "nothing" : redacted ? "a string" : Quote.text(string)
        }
    }
}
