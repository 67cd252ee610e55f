/// A 1-based line and column; columns count Unicode scalars, as libyaml (and so Yams) does.
struct SourcePosition: Hashable, Comparable, Sendable {
    var line: Int
    var column: Int

    static let start = SourcePosition(line: 1, column: 1)

    static func < (lhs: SourcePosition, rhs: SourcePosition) -> Bool {
        (lhs.line, lhs.column) < (rhs.line, rhs.column)
    }
}

/// A manifest's bytes, checked to be text libyaml will read: at most ``maxBytes``, UTF-8, and
/// only the characters YAML allows. A leading UTF-8 byte order mark is dropped.
struct SourceText {
    /// Manifests are small; anything bigger is refused before parsing.
    static let maxBytes = 1_048_576

    /// The text (without a byte order mark).
    let bytes: [UInt8]
    /// Byte offset of each line's start, lines split the way libyaml splits them.
    let lineStarts: [Int]

    /// Why bytes are not manifest text.
    struct Problem: Error {
        var position: SourcePosition
        var message: String
    }

    init(_ input: [UInt8]) throws(Problem) {
        guard input.count <= Self.maxBytes else {
            throw Problem(
                position: .start,
                message: "manifest is \(input.count) bytes; the limit is \(Self.maxBytes)"
            )
        }
        var bytes = input
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        var lineStarts = [0]
        var index = 0
        var column = 1
        while index < bytes.count {
            let lead = bytes[index]
            guard let (scalar, width) = Self.decode(bytes, at: index) else {
                throw Problem(
                    position: SourcePosition(line: lineStarts.count, column: column),
                    message: "manifest is not UTF-8 text (byte 0x\(Self.hex(lead)) is invalid here); "
                        + "is this a binary file?"
                )
            }
            guard Self.isAllowed(scalar) else {
                throw Problem(
                    position: SourcePosition(line: lineStarts.count, column: column),
                    message: "manifest contains the control character U+\(Self.hex(scalar, digits: 4)), "
                        + "which YAML does not allow; is this a binary file?"
                )
            }
            // Line breaks as libyaml sees them: CR LF, CR, LF, NEL, LS, PS.
            let isBreak = scalar == 0x0A || scalar == 0x0D || scalar == 0x85 || scalar == 0x2028 || scalar == 0x2029
            if scalar == 0x0D, index + 1 < bytes.count, bytes[index + 1] == 0x0A {
                index += 2
            } else {
                index += width
            }
            if isBreak {
                lineStarts.append(index)
                column = 1
            } else {
                column += 1
            }
        }
        self.bytes = bytes
        self.lineStarts = lineStarts
    }

    /// The text as a Swift string (valid UTF-8 by construction).
    var string: String { String(decoding: bytes, as: UTF8.self) }

    /// The byte offset of `position`, if it is inside the text.
    func offset(of position: SourcePosition) -> Int? {
        guard position.line >= 1, position.line <= lineStarts.count, position.column >= 1 else { return nil }
        var index = lineStarts[position.line - 1]
        let end = position.line < lineStarts.count ? lineStarts[position.line] : bytes.count
        var column = 1
        while column < position.column {
            guard index < end else { return nil }
            index += Self.width(of: bytes[index])
            column += 1
        }
        return index
    }

    /// The number of Unicode scalars in the first `byteCount` bytes of `string`.
    static func scalarCount(in string: String, firstBytes byteCount: Int) -> Int {
        var count = 0
        for byte in string.utf8.prefix(byteCount) where byte & 0xC0 != 0x80 { count += 1 }
        return count
    }

    /// The length of a UTF-8 sequence from its lead byte.
    static func width(of lead: UInt8) -> Int {
        switch lead {
        case 0xF0...: 4
        case 0xE0...: 3
        case 0xC0...: 2
        default: 1
        }
    }

    /// The characters libyaml's reader accepts.
    private static func isAllowed(_ scalar: UInt32) -> Bool {
        switch scalar {
        case 0x09, 0x0A, 0x0D, 0x20...0x7E, 0x85, 0xA0...0xD7FF, 0xE000...0xFFFD, 0x10000...0x10FFFF: true
        default: false
        }
    }

    /// Strict UTF-8 decoding of one scalar (no overlongs, no surrogates).
    private static func decode(_ bytes: [UInt8], at index: Int) -> (UInt32, Int)? {
        let lead = bytes[index]
        let width: Int
        var scalar: UInt32
        switch lead {
        case 0x00...0x7F: return (UInt32(lead), 1)
        case 0xC2...0xDF:
            width = 2
            scalar = UInt32(lead & 0x1F)
        case 0xE0...0xEF:
            width = 3
            scalar = UInt32(lead & 0x0F)
        case 0xF0...0xF4:
            width = 4
            scalar = UInt32(lead & 0x07)
        default: return nil
        }
        guard index + width <= bytes.count else { return nil }
        for offset in 1..<width {
            let byte = bytes[index + offset]
            guard byte & 0xC0 == 0x80 else { return nil }
            scalar = scalar << 6 | UInt32(byte & 0x3F)
        }
        switch width {
        case 3 where scalar < 0x800 || (0xD800...0xDFFF).contains(scalar): return nil
        case 4 where scalar < 0x10000 || scalar > 0x10FFFF: return nil
        default: return (scalar, width)
        }
    }

    private static func hex(_ value: some BinaryInteger, digits: Int = 2) -> String {
        let text = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}
