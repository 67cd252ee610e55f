/// The bits of one base64url segment (RFC 4648 §5), read left to right, most significant bit
/// first: how the IAB TCF and GPP formats pack their fields. `=` padding at the end is ignored.
///
/// Reads past the end return `nil`, so each decoder can say which field ran out.
struct ConsentBits {
    /// A character outside the base64url alphabet, at this offset of the segment.
    struct InvalidCharacter: Error {
        var offset: Int
    }

    private let sextets: [UInt8]
    /// The next bit to read.
    private(set) var position = 0

    init(base64URL text: Substring) throws(InvalidCharacter) {
        var utf8 = text.utf8[...]
        while utf8.last == UInt8(ascii: "=") { utf8.removeLast() }
        var sextets: [UInt8] = []
        sextets.reserveCapacity(utf8.count)
        for (offset, byte) in utf8.enumerated() {
            guard let value = Self.value(of: byte) else { throw InvalidCharacter(offset: offset) }
            sextets.append(value)
        }
        self.sextets = sextets
    }

    /// The number of bits in the segment.
    var count: Int { sextets.count * 6 }

    /// Bits not read yet.
    var remaining: Int { count - position }

    /// The next `width` bits (at most 62) as an unsigned integer, or `nil` when fewer remain.
    mutating func read(_ width: Int) -> Int? {
        precondition(width >= 0 && width <= 62)
        guard width <= remaining else { return nil }
        var value = 0
        for _ in 0..<width {
            let sextet = sextets[position / 6]
            let bit = (sextet >> (5 - UInt8(position % 6))) & 1
            value = value << 1 | Int(bit)
            position += 1
        }
        return value
    }

    /// The next bit, or `nil` at the end.
    mutating func readBit() -> Bool? {
        read(1).map { $0 == 1 }
    }

    /// What reading a Fibonacci-coded integer gave.
    enum Fibonacci: Equatable {
        case value(Int)
        case truncated
        /// No terminating `11` within the longest code this decoder accepts.
        case tooLong
    }

    /// The next Fibonacci-coded integer (GPP): bit `i` stands for the `i`-th Fibonacci number
    /// (1, 2, 3, 5, 8, …) and two consecutive ones end the code.
    mutating func readFibonacci() -> Fibonacci {
        var (current, next) = (1, 2)
        var value = 0
        var previous = false
        // 40 code bits reach past 10^8: far beyond any section ID or offset.
        for _ in 0..<40 {
            guard let bit = readBit() else { return .truncated }
            if bit && previous { return .value(value) }
            if bit { value += current }
            previous = bit
            (current, next) = (next, current + next)
        }
        return .tooLong
    }

    private static func value(of byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): byte - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): byte - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0") + 52
        case UInt8(ascii: "-"): 62
        case UInt8(ascii: "_"): 63
        default: nil
        }
    }
}
