/// The gate before the YAML parser: a manifest is at most ``maxBytes`` of UTF-8 text holding only
/// the characters YAML allows. A leading UTF-8 byte order mark is dropped.
///
/// libyaml's reader refuses the same bytes, but names only a byte offset, and only once its
/// scanner gets there (after the events before it); checking first makes a binary file one clear
/// diagnostic at its first bad byte.
enum ManifestText {
    /// Manifests are small; anything bigger is refused before parsing.
    static let maxBytes = 1_048_576

    typealias Problem = ManifestComposer.Problem

    /// The text to parse (without a byte order mark), or why it isn't manifest text.
    static func check(_ input: [UInt8]) -> Result<[UInt8], ManifestComposer.Problem> {
        guard input.count <= maxBytes else {
            return .failure(
                Problem(position: .start, message: "manifest is \(input.count) bytes; the limit is \(maxBytes)")
            )
        }
        let bytes = input.starts(with: [0xEF, 0xBB, 0xBF]) ? Array(input.dropFirst(3)) : input
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        var position = SourcePosition.start
        var previous: UInt32 = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .emptyInput:
                return .success(bytes)
            case .error:
                let byte = hex(bytes[offset], digits: 2)
                return .failure(
                    Problem(
                        position: position,
                        message: "manifest is not UTF-8 text (byte 0x\(byte) is invalid here); is this a binary file?"
                    )
                )
            case .valid(let encoded):
                let scalar = Unicode.UTF8.decode(encoded).value
                guard isAllowed(scalar) else {
                    return .failure(
                        Problem(
                            position: position,
                            message: "manifest contains the control character U+\(hex(scalar, digits: 4)), "
                                + "which YAML does not allow; is this a binary file?"
                        )
                    )
                }
                offset += encoded.count
                // A line ends at LF (but CR LF is one break), CR, NEL, LS or PS, as in libyaml's marks.
                switch scalar {
                case 0x0A where previous == 0x0D:
                    break  // The LF of CR LF: the CR already started the new line.
                case 0x0A, 0x0D, 0x85, 0x2028, 0x2029:
                    position = SourcePosition(line: position.line + 1, column: 1)
                default:
                    position.column += 1
                }
                previous = scalar
            }
        }
    }

    /// The characters libyaml's reader accepts.
    private static func isAllowed(_ scalar: UInt32) -> Bool {
        switch scalar {
        case 0x09, 0x0A, 0x0D, 0x20...0x7E, 0x85, 0xA0...0xD7FF, 0xE000...0xFFFD, 0x10000...0x10FFFF: true
        default: false
        }
    }

    private static func hex(_ value: some BinaryInteger, digits: Int) -> String {
        let text = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}
