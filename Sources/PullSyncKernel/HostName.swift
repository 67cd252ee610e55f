/// Host-name handling shared by manifest validation and the send-time URL check.
package enum HostName {
    /// Lowercases ASCII letters, removes one trailing dot and the brackets of an IPv6
    /// literal, so that `Sync.Example.` and `sync.example` (and `[::1]` and `::1`) compare equal.
    package static func normalize(_ host: some StringProtocol) -> String {
        // Checked for every call planned and before every send: most names are normalized already,
        // and copying them costs two allocations.
        let string = String(host)
        let unchanged = string.utf8.allSatisfy { !($0 >= 0x41 && $0 <= 0x5A) && $0 != UInt8(ascii: "[") }
        if unchanged && string.utf8.last != UInt8(ascii: ".") { return string }
        var bytes = Array(string.utf8)
        if bytes.count >= 2, bytes.first == UInt8(ascii: "["), bytes.last == UInt8(ascii: "]") {
            bytes.removeFirst()
            bytes.removeLast()
        }
        if bytes.last == UInt8(ascii: ".") { bytes.removeLast() }
        for index in bytes.indices where bytes[index] >= 0x41 && bytes[index] <= 0x5A {
            bytes[index] += 0x20
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Whether `host` is a syntactically valid DNS name: labels of 1-63 letters, digits and
    /// hyphens (not at either end), 253 characters at most. IP literals are not DNS names.
    package static func isValidDNSName(_ host: some StringProtocol) -> Bool {
        let name = normalize(host)
        guard !name.isEmpty, name.utf8.count <= 253 else { return false }
        var labelLength = 0
        var previous: UInt8 = UInt8(ascii: ".")
        var allDigitsAndDots = true
        for byte in name.utf8 {
            switch byte {
            case UInt8(ascii: "."):
                guard labelLength > 0, previous != UInt8(ascii: "-") else { return false }
                labelLength = 0
            case UInt8(ascii: "-"):
                guard labelLength > 0 else { return false }
                labelLength += 1
                allDigitsAndDots = false
            case UInt8(ascii: "a")...UInt8(ascii: "z"):
                labelLength += 1
                allDigitsAndDots = false
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                labelLength += 1
            default:
                return false
            }
            guard labelLength <= 63 else { return false }
            previous = byte
        }
        guard labelLength > 0, previous != UInt8(ascii: "-"), !allDigitsAndDots else { return false }
        // `0x7f000001`, `0xa.0.0.1`, `2130706433`: forms that resolvers read as IPv4 addresses.
        // A real name's last label (its top-level domain) is never all digits (RFC 3696 §2).
        if readsAsIPv4(name) { return false }
        let lastLabel = name.split(separator: ".").last ?? ""
        return !lastLabel.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }

    /// Whether `inet_aton` (glibc's, which resolvers use) reads `text` as an IPv4 address: one to
    /// four numbers separated by dots, each decimal, octal (a leading `0`) or hex (`0x`), the last
    /// filling the bytes the others leave (`127.1`, `0x7f.1`, `2130706433`), up to the end or to a
    /// whitespace character (what follows one is not read). The C function's grammar, written out
    /// so that the kernel needs no C library (`NumericHostFormTests` compares the two).
    package static func readsAsIPv4(_ text: some StringProtocol) -> Bool {
        let utf8 = text.utf8
        var index = utf8.startIndex
        var numbersBefore = 0
        while true {
            // One number, as `strtoul(_, _, 0)` reads it; it must start with a digit.
            guard index < utf8.endIndex, let first = digit(utf8[index], base: 10) else { return false }
            var base: UInt64 = first == 0 ? 8 : 10
            if first == 0 {
                // `0x` is hex only when a hex digit follows; else the number is the `0`.
                let x = utf8.index(after: index)
                if x < utf8.endIndex, utf8[x] | 0x20 == UInt8(ascii: "x") {
                    let after = utf8.index(after: x)
                    if after < utf8.endIndex, digit(utf8[after], base: 16) != nil {
                        base = 16
                        index = after
                    }
                }
            }
            var value: UInt64 = 0
            while index < utf8.endIndex, let next = digit(utf8[index], base: base) {
                value = value * base + next
                if value > 0xFFFF_FFFF { return false }
                index = utf8.index(after: index)
            }
            if index < utf8.endIndex, utf8[index] == UInt8(ascii: ".") {
                guard numbersBefore < 3, value <= 0xFF else { return false }
                numbersBefore += 1
                index = utf8.index(after: index)
                continue
            }
            if index < utf8.endIndex, !isSpace(utf8[index]) { return false }
            // The last number fills the bytes the ones before it left.
            return value <= UInt64(0xFFFF_FFFF) >> (8 * numbersBefore)
        }
    }

    /// The value of `byte` as a digit in `base` (8, 10 or 16), or `nil`.
    private static func digit(_ byte: UInt8, base: UInt64) -> UInt64? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"):
            let value = UInt64(byte - UInt8(ascii: "0"))
            return value < base ? value : nil
        case UInt8(ascii: "a")...UInt8(ascii: "f") where base == 16:
            return UInt64(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F") where base == 16:
            return UInt64(byte - UInt8(ascii: "A") + 10)
        default:
            return nil
        }
    }

    /// C's `isspace` in the C locale.
    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || (byte >= 0x09 && byte <= 0x0D)
    }

    /// Whether `host` names this machine: `localhost`, `*.localhost`, `127.0.0.0/8` or `::1`.
    package static func isLoopback(_ host: some StringProtocol) -> Bool {
        let name = normalize(host)
        if name == "localhost" || name.hasSuffix(".localhost") { return true }
        if name == "::1" { return true }
        // Checked before every send: most names are not 127.x, and splitting by Character costs
        // about 9,000 instructions a call (callgrind), so look at the bytes first.
        guard name.utf8.starts(with: "127.".utf8) else { return false }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "127" else { return false }
        return parts.allSatisfy { part in UInt8(part) != nil }
    }
}

/// The hosts a partner's pull URL may point at. Compared case-insensitively, ignoring a
/// trailing dot. Checked when the manifest loads and again before every send.
public struct AllowedHosts: Sendable, Hashable {
    /// Normalized host names.
    public let hosts: Set<String>

    /// Creates the list from `hosts`, normalized (lowercased, no trailing dot).
    public init(_ hosts: some Sequence<String>) {
        self.hosts = Set(hosts.map { HostName.normalize($0) })
    }

    /// Whether `host` is on the list.
    public func contains(_ host: some StringProtocol) -> Bool {
        hosts.contains(HostName.normalize(host))
    }
}
