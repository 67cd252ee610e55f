/// What a scalar means in a manifest. Quoted and block scalars are always text; plain scalars are
/// read with YAML 1.2 core rules (`true`, `false`, `null`, decimal numbers), nothing looser: `yes`
/// is text, not a boolean, and `0x10` is text, not a number.
enum ScalarMeaning: Equatable {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case text(String)

    init(_ string: String, style: Node.Style) {
        guard style == .plain else {
            self = .text(string)
            return
        }
        switch string {
        case "", "~", "null", "Null", "NULL": self = .null
        case "true", "True", "TRUE": self = .bool(true)
        case "false", "False", "FALSE": self = .bool(false)
        default:
            // `Int` and `Double` read decimal text only; the characters allowed keep out the rest
            // of what `Double` reads (`inf`, `nan`, `0x1p3`).
            if let value = Int(string) {
                self = .integer(value)
            } else if string.utf8.allSatisfy({ (0x30...0x39).contains($0) || "+-.eE".utf8.contains($0) }),
                let value = Double(string), value.isFinite
            {
                self = .number(value)
            } else {
                self = .text(string)
            }
        }
    }
}

/// Quotes user text for a message: single quotes, at most 60 characters, control characters escaped.
enum Quote {
    static func text(_ string: String) -> String {
        let quoted = escaping(string.unicodeScalars.prefix(60)) {
            $0.value < 0x20 || $0.value == 0x7F || (0x80..<0xA0).contains($0.value)
        }
        return "'\(quoted)\(string.unicodeScalars.dropFirst(60).isEmpty ? "" : "…")'"
    }

    /// A message as one line: line breaks and other control characters that reached it from the
    /// manifest (a template's variable name, say) escaped, so that `path:line:column: error:`
    /// lines stay one per problem.
    static func line(_ message: String) -> String {
        let breaksLine: (Unicode.Scalar) -> Bool = {
            ($0.value < 0x20 && $0 != "\t") || $0.value == 0x7F || (0x80..<0xA0).contains($0.value)
                || $0.value == 0x2028 || $0.value == 0x2029
        }
        guard message.unicodeScalars.contains(where: breaksLine) else { return message }
        return escaping(message.unicodeScalars, where: breaksLine)
    }

    private static func escaping(
        _ scalars: some Sequence<Unicode.Scalar>,
        where escape: (Unicode.Scalar) -> Bool
    ) -> String {
        var result = ""
        for scalar in scalars {
            if escape(scalar) {
                result += scalar.escaped(asASCII: true)
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}
