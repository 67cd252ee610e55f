/// Quotes user text for a message: single quotes, at most 60 characters, control characters escaped.
package enum Quote {
    package static func text(_ string: String) -> String {
        let quoted = escaping(string.unicodeScalars.prefix(60)) {
            $0.value < 0x20 || $0.value == 0x7F || (0x80..<0xA0).contains($0.value)
        }
        return "'\(quoted)\(string.unicodeScalars.dropFirst(60).isEmpty ? "" : "…")'"
    }

    /// A message as one line: line breaks and other control characters that reached it from the
    /// manifest (a template's variable name, say) escaped, so that `path:line:column: error:`
    /// lines stay one per problem.
    package static func line(_ message: String) -> String {
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
