#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

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
        var probe = in_addr()
        if inet_aton(name, &probe) != 0 { return false }
        let lastLabel = name.split(separator: ".").last ?? ""
        return !lastLabel.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
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
