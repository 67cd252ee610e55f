/// What a scalar means in a manifest. Quoted and block scalars are always text; plain scalars are
/// read with YAML 1.2 core rules (`true`, `false`, `null`, decimal numbers), nothing looser: `yes`
/// is text, not a boolean, and `0x10` is text, not a number.
enum ScalarMeaning: Equatable {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case text(String)

    init(_ scalar: Node.Scalar) {
        let string = scalar.string
        guard scalar.style == .plain else {
            self = .text(string)
            return
        }
        switch string {
        case "", "~", "null", "Null", "NULL": self = .null
        case "true", "True", "TRUE": self = .bool(true)
        case "false", "False", "FALSE": self = .bool(false)
        default:
            if Self.isDecimalInteger(string) {
                self = Int(string).map { .integer($0) } ?? .number(Double(string) ?? .infinity)
            } else if Self.isDecimalNumber(string), let value = Double(string), value.isFinite {
                self = .number(value)
            } else {
                self = .text(string)
            }
        }
    }

    /// `^[-+]?[0-9]+$`
    static func isDecimalInteger(_ string: String) -> Bool {
        var digits = Substring(string).utf8
        if let first = digits.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
            digits = digits.dropFirst()
        }
        return !digits.isEmpty && digits.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }

    /// `^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$`
    static func isDecimalNumber(_ string: String) -> Bool {
        let bytes = Array(string.utf8)
        var index = 0
        func digits() -> Int {
            let start = index
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                index += 1
            }
            return index - start
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") { index += 1 }
        var mantissa = digits()
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            mantissa += digits()
        }
        guard mantissa > 0 else { return false }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") {
                index += 1
            }
            guard digits() > 0 else { return false }
        }
        return index == bytes.count
    }
}

extension Node {
    /// "a mapping", "a list", "nothing", or the scalar quoted, for "…; found X" in messages.
    /// With `redacted`, a scalar is described by its kind only (for values that may be secrets).
    func found(redacted: Bool = false) -> String {
        switch self {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .scalar(let scalar):
            let meaning = ScalarMeaning(scalar)
            if meaning == .null { return "nothing" }
            if redacted { return "a string" }
            return Quote.text(scalar.string)
        }
    }
}

/// Quotes user text for a message: single quotes, at most 60 characters, control characters escaped.
enum Quote {
    static func text(_ string: String) -> String {
        var result = ""
        var count = 0
        for scalar in string.unicodeScalars {
            if count == 60 {
                result += "…"
                break
            }
            if scalar.value < 0x20 || scalar.value == 0x7F || (0x80..<0xA0).contains(scalar.value) {
                result += scalar.escaped(asASCII: true)
            } else {
                result.unicodeScalars.append(scalar)
            }
            count += 1
        }
        return "'\(result)'"
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
        var result = ""
        for scalar in message.unicodeScalars {
            if breaksLine(scalar) {
                result += scalar.escaped(asASCII: true)
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}
