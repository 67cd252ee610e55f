/// What a scalar means. Quoted and block scalars are always text; plain scalars are
/// read with YAML 1.2 core rules (`true`, `false`, `null`, decimal numbers), nothing looser: `yes`
/// is text, not a boolean, and `0x10` is text, not a number.
package enum ScalarMeaning: Equatable, Sendable {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case text(String)

    package init(_ string: String, style: Node.Style) {
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
