/// The gate before libyaml: a document is at most `maxBytes` of UTF-8 text holding only the
/// characters YAML allows. A leading UTF-8 byte order mark is dropped.
///
/// libyaml's reader refuses the same bytes, but names only a byte offset, and only once its
/// scanner gets there (after the events before it); checking first makes a binary file one clear
/// diagnostic at its first bad byte.
enum YAMLText {
    /// The text to parse (without a byte order mark), or why it isn't YAML text.
    static func check(_ input: [UInt8], maxBytes: Int) -> Result<[UInt8], YAMLProblem> {
        guard input.count <= maxBytes else {
            return .failure(YAMLProblem(.tooLarge(bytes: input.count, limit: maxBytes), at: .start))
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
                return .failure(YAMLProblem(.notUTF8(byte: bytes[offset]), at: position))
            case .valid(let encoded):
                let scalar = Unicode.UTF8.decode(encoded).value
                guard isAllowed(scalar) else {
                    return .failure(YAMLProblem(.disallowedCharacter(scalar), at: position))
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
}
