package import PullSyncKernel

/// Reads `pull.url` into a ``PartnerURL``, strictly: an absolute `https` URL (or `http` to a
/// loopback host), a DNS or loopback host, an optional port, a percent-encoded path and fixed
/// query, no user information and no fragment.
///
/// Messages never repeat the URL itself: a careless URL may carry a credential.
package enum PullURLParser {
    package struct Problem: Error, Equatable {
        package var message: String
    }

    /// What RFC 3986 lets a path or query hold without percent-encoding (`?` only starts the query).
    private static let unencoded = Set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/?".utf8
    )

    /// The URL, or what is wrong with it, said of the manifest key `key` (`pull.url`).
    package static func parse(_ string: String, key: String) throws(Problem) -> PartnerURL {
        let bytes = Array(string.utf8)
        let isLetter = { (byte: UInt8) in (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) }
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")), colon > 0, isLetter(bytes[0]),
            bytes[..<colon].allSatisfy({ isLetter($0) || (0x30...0x39).contains($0) || "+-.".utf8.contains($0) }),
            bytes[(colon + 1)...].starts(with: "//".utf8)
        else {
            throw Problem(message: "'\(key)' must be an absolute URL like https://sync.partner.example/pull")
        }
        let scheme = String(decoding: bytes[..<colon], as: UTF8.self).lowercased()
        guard scheme == "https" || scheme == "http" else {
            throw Problem(message: "'\(key)' must use https; found \(Quote.text(scheme))")
        }
        let authorityStart = colon + 3
        let authorityEnd = bytes[authorityStart...].firstIndex { "/?#".utf8.contains($0) } ?? bytes.count
        let authority = bytes[authorityStart..<authorityEnd]
        if authority.contains(UInt8(ascii: "@")) {
            throw Problem(
                message: "'\(key)' must not contain user information (user:password@); tokens belong in pull.auth"
            )
        }
        if bytes.contains(UInt8(ascii: "#")) {
            throw Problem(message: "'\(key)' must not have a fragment ('#…')")
        }
        let (host, port) = try hostAndPort(authority, key: key)
        guard HostName.isValidDNSName(host) || HostName.isLoopback(host) else {
            throw Problem(message: "'\(key)' host \(Quote.text(host)) must be a DNS name or a loopback address")
        }
        if scheme == "http" && !HostName.isLoopback(host) {
            throw Problem(
                message: "'\(key)' must use https; http is accepted only for loopback hosts (localhost, 127.0.0.1, ::1)"
            )
        }
        // The path, and the fixed query after its `?`: nothing that must be percent-encoded.
        let rest = bytes[authorityEnd...]
        var unchecked = rest
        while let byte = unchecked.popFirst() {
            let character: String
            switch byte {
            case UInt8(ascii: "%"):
                let isHex = { (byte: UInt8) in "0123456789abcdefABCDEF".utf8.contains(byte) }
                if unchecked.count >= 2, unchecked.prefix(2).allSatisfy(isHex) {
                    unchecked.removeFirst(2)
                    continue
                }
                character = "'%' not followed by two hex digits"
            case _ where unencoded.contains(byte): continue
            case UInt8(ascii: " "): character = "a space"
            case 0x80...: character = "a non-ASCII character"
            default: character = Quote.text(String(UnicodeScalar(byte)))
            }
            throw Problem(message: "'\(key)' contains \(character) which must be percent-encoded")
        }
        let queryStart = rest.firstIndex(of: UInt8(ascii: "?"))
        return PartnerURL(
            scheme: scheme,
            host: host,
            port: port,
            path: String(decoding: bytes[authorityEnd..<(queryStart ?? bytes.count)], as: UTF8.self),
            fixedQuery: queryStart.map { String(decoding: bytes[($0 + 1)...], as: UTF8.self) }
        )
    }

    /// Normalizes a host for comparison: lowercase, no trailing dot, no IPv6 brackets.
    package static func normalizeHost(_ host: String) -> String {
        let normalized = HostName.normalize(host)
        if normalized.hasPrefix("["), normalized.hasSuffix("]"), normalized.count >= 2 {
            return String(normalized.dropFirst().dropLast())
        }
        return normalized
    }

    private static func hostAndPort(_ authority: ArraySlice<UInt8>, key: String) throws(Problem) -> (String, Int?) {
        var hostBytes = authority
        var portBytes: ArraySlice<UInt8>?
        if authority.first == UInt8(ascii: "[") {
            guard let close = authority.firstIndex(of: UInt8(ascii: "]")) else {
                throw Problem(message: "'\(key)' has an unclosed '[' in its host")
            }
            hostBytes = authority[(authority.startIndex + 1)..<close]
            let rest = authority[(close + 1)...]
            if !rest.isEmpty {
                guard rest.first == UInt8(ascii: ":") else {
                    throw Problem(message: "'\(key)' has text after its host's ']'")
                }
                portBytes = rest.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: UInt8(ascii: ":")) {
            hostBytes = authority[..<colon]
            portBytes = authority[(colon + 1)...]
        }
        guard !hostBytes.isEmpty else {
            throw Problem(message: "'\(key)' has no host")
        }
        var port: Int?
        if let portBytes {
            guard (1...5).contains(portBytes.count), portBytes.allSatisfy({ (0x30...0x39).contains($0) }),
                let value = Int(String(decoding: portBytes, as: UTF8.self)), (1...65_535).contains(value)
            else {
                throw Problem(message: "'\(key)' has an invalid port; use a number from 1 to 65535")
            }
            port = value
        }
        return (HostName.normalize(String(decoding: hostBytes, as: UTF8.self)), port)
    }
}
