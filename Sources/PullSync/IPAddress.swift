#if canImport(Glibc)
package import Glibc
#elseif canImport(Musl)
package import Musl
#elseif canImport(Darwin)
package import Darwin
#endif

/// An IPv4 or IPv6 address, classified for target safety.
public enum IPAddress: Sendable, Hashable, CustomStringConvertible {
    case v4(UInt8, UInt8, UInt8, UInt8)
    /// Sixteen bytes, network order.
    case v6([UInt8])

    /// Parses a literal (`192.0.2.1`, `2001:db8::1`, `[::1]`); `nil` when it is not one.
    public init?(_ text: some StringProtocol) {
        // Looked at as bytes: searching `Character`s walks grapheme clusters (a new browser's
        // client IP is parsed on every page view).
        var literal = Substring(text)
        let bytes = literal.utf8
        if bytes.count >= 2, bytes.first == UInt8(ascii: "["), bytes.last == UInt8(ascii: "]") {
            literal = literal[bytes.index(after: bytes.startIndex)..<bytes.index(before: bytes.endIndex)]
        }
        if let zone = literal.utf8.firstIndex(of: UInt8(ascii: "%")) { literal = literal[..<zone] }
        let address = String(literal)
        // `withCString`, not the String itself: a short string passed to C is copied into an
        // array first (an allocation per address), `withCString` copies it on the stack.
        var v4 = in_addr()
        if address.withCString({ inet_pton(AF_INET, $0, &v4) }) == 1 {
            self.init(v4)
            return
        }
        var v6 = in6_addr()
        if address.withCString({ inet_pton(AF_INET6, $0, &v6) }) == 1 {
            self.init(v6)
            return
        }
        return nil
    }

    /// An IPv4 address as the system holds it.
    package init(_ address: in_addr) {
        let value = UInt32(bigEndian: address.s_addr)
        self = .v4(UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF))
    }

    /// An IPv6 address as the system holds it.
    package init(_ address: in6_addr) {
        var bytes = address
        self = .v6(withUnsafeBytes(of: &bytes) { Array($0) })
    }

    /// The literal form, as `inet_ntop` writes it.
    public var description: String {
        switch self {
        case .v4(let a, let b, let c, let d):
            // Written into one buffer: interpolating the four numbers made and appended a string
            // for each (a new browser's client IP is written this way on every page view).
            return String(unsafeUninitializedCapacity: 15) { buffer in
                var count = 0
                func put(_ octet: UInt8, dot: Bool = true) {
                    if dot {
                        buffer[count] = UInt8(ascii: ".")
                        count += 1
                    }
                    if octet >= 100 {
                        buffer[count] = UInt8(ascii: "0") + octet / 100
                        count += 1
                    }
                    if octet >= 10 {
                        buffer[count] = UInt8(ascii: "0") + octet / 10 % 10
                        count += 1
                    }
                    buffer[count] = UInt8(ascii: "0") + octet % 10
                    count += 1
                }
                put(a, dot: false)
                put(b)
                put(c)
                put(d)
                return count
            }
        case .v6(let bytes):
            var address = in6_addr()
            withUnsafeMutableBytes(of: &address) { $0.copyBytes(from: bytes) }
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            guard inet_ntop(AF_INET6, &address, &buffer, socklen_t(buffer.count)) != nil else { return "::?" }
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    /// The embedded IPv4 address of an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`).
    package var mappedIPv4: IPAddress? {
        guard case .v6(let bytes) = self, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF
        else { return nil }
        return .v4(bytes[12], bytes[13], bytes[14], bytes[15])
    }

    /// The address with an IPv4-mapped IPv6 form (`::ffff:a.b.c.d`) written as IPv4.
    package var canonical: IPAddress { mappedIPv4 ?? self }

    /// `127.0.0.0/8` or `::1`.
    package var isLoopback: Bool {
        if let mapped = mappedIPv4 { return mapped.isLoopback }
        switch self {
        case .v4(let a, _, _, _): return a == 127
        case .v6(let bytes): return bytes[0..<15].allSatisfy { $0 == 0 } && bytes[15] == 1
        }
    }

    /// Why this address may not be a partner target (other than loopback), or `nil` when it
    /// is a public unicast address: unspecified, private, shared (CGNAT), link-local (cloud
    /// metadata), multicast, reserved, documentation and benchmarking ranges.
    package var nonPublicRange: String? {
        if let mapped = mappedIPv4 { return mapped.nonPublicRange }
        switch self {
        case .v4(let a, let b, let c, _):
            switch (a, b, c) {
            case (0, _, _): return "unspecified (0.0.0.0/8)"
            case (10, _, _): return "private (10.0.0.0/8)"
            case (100, 64...127, _): return "shared address space (100.64.0.0/10)"
            case (127, _, _): return "loopback (127.0.0.0/8)"
            case (169, 254, _): return "link-local (169.254.0.0/16)"
            case (172, 16...31, _): return "private (172.16.0.0/12)"
            case (192, 0, 0): return "IETF protocol assignments (192.0.0.0/24)"
            case (192, 0, 2), (198, 51, 100), (203, 0, 113): return "documentation range"
            case (192, 168, _): return "private (192.168.0.0/16)"
            case (198, 18...19, _): return "benchmarking (198.18.0.0/15)"
            case (224...239, _, _): return "multicast (224.0.0.0/4)"
            case (240...255, _, _): return "reserved (240.0.0.0/4)"
            default: return nil
            }
        case .v6(let bytes):
            if bytes.allSatisfy({ $0 == 0 }) { return "unspecified (::)" }
            if isLoopback { return "loopback (::1)" }
            if bytes[0] & 0xFE == 0xFC { return "unique local (fc00::/7)" }
            if bytes[0] == 0xFE && bytes[1] & 0xC0 == 0x80 { return "link-local (fe80::/10)" }
            if bytes[0] == 0xFF { return "multicast (ff00::/8)" }
            if bytes[0] == 0x20 && bytes[1] == 0x01 && bytes[2] == 0x0D && bytes[3] == 0xB8 {
                return "documentation (2001:db8::/32)"
            }
            if bytes[0..<12].allSatisfy({ $0 == 0 }) { return "IPv4-compatible (::/96)" }
            if bytes[0..<8].allSatisfy({ $0 == 0 }) && bytes[8] == 0xFF && bytes[9] == 0xFF && bytes[10] == 0
                && bytes[11] == 0
            {
                return "IPv4-translated (::ffff:0:0/96)"
            }
            if bytes[0] == 0xFE && bytes[1] & 0xC0 == 0xC0 { return "site-local (fec0::/10)" }
            if bytes[0] == 0x20 && bytes[1] == 0x02 {
                return IPAddress.v4(bytes[2], bytes[3], bytes[4], bytes[5]).nonPublicRange.map { "6to4 of \($0)" }
            }
            if bytes[0..<6] == [0, 0x64, 0xFF, 0x9B, 0, 0x01][...] { return "local-use NAT64 (64:ff9b:1::/48)" }
            if bytes[0..<12] == [0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0][...] {
                return IPAddress.v4(bytes[12], bytes[13], bytes[14], bytes[15]).nonPublicRange
                    .map { "NAT64 of \($0)" }
            }
            return nil
        }
    }
}
