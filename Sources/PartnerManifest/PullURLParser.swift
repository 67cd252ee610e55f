import PullSyncKernel

/// Reads `pull.url` into a ``PartnerURL``, strictly: an absolute `https` URL (or `http` to a
/// loopback host), a DNS or loopback host, an optional port, a percent-encoded path and fixed
/// query, no user information and no fragment.
///
/// Messages never repeat the URL itself: a careless URL may carry a credential.
enum PullURLParser {
    struct Problem: Error, Equatable {
        var message: String
    }

    static func parse(_ string: String, key: String) throws(Problem) -> PartnerURL {
        let bytes = Array(string.utf8)
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")), colon > 0,
            isScheme(bytes[..<colon]),
            bytes[(colon + 1)...].starts(with: Array("//".utf8))
        else {
            throw Problem(message: "'\(key)' must be an absolute URL like https://sync.partner.example/pull")
        }
        let scheme = String(decoding: bytes[..<colon], as: UTF8.self).lowercased()
        guard scheme == "https" || scheme == "http" else {
            throw Problem(message: "'\(key)' must use https; found \(Quote.text(scheme))")
        }
        let authorityStart = colon + 3
        let authorityEnd =
            bytes[authorityStart...].firstIndex {
                $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#")
            } ?? bytes.count
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
        let queryStart = bytes[authorityEnd...].firstIndex(of: UInt8(ascii: "?"))
        let path = bytes[authorityEnd..<(queryStart ?? bytes.count)]
        let query = queryStart.map { bytes[($0 + 1)...] } ?? []
        for part in [path, query] {
            if let bad = firstUnencoded(part, allowQuestionMark: part.startIndex != authorityEnd) {
                throw Problem(message: "'\(key)' contains \(bad) which must be percent-encoded")
            }
        }
        return PartnerURL(
            scheme: scheme,
            host: host,
            port: port,
            path: String(decoding: path, as: UTF8.self),
            fixedQuery: queryStart == nil ? nil : String(decoding: query, as: UTF8.self)
        )
    }

    /// Normalizes a host for comparison: lowercase, no trailing dot, no IPv6 brackets.
    static func normalizeHost(_ host: String) -> String {
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
            guard !portBytes.isEmpty, portBytes.count <= 5,
                portBytes.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                let value = Int(String(decoding: portBytes, as: UTF8.self)), (1...65_535).contains(value)
            else {
                throw Problem(message: "'\(key)' has an invalid port; use a number from 1 to 65535")
            }
            port = value
        }
        return (HostName.normalize(String(decoding: hostBytes, as: UTF8.self)), port)
    }

    private static func isScheme(_ bytes: ArraySlice<UInt8>) -> Bool {
        guard let first = bytes.first, isLetter(first) else { return false }
        return bytes.allSatisfy {
            isLetter($0) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "+")
                || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".")
        }
    }

    private static func isLetter(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
            || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
    }

    /// The first character that RFC 3986 requires to be percent-encoded in a path (or query), as
    /// a quoted description, or `nil`.
    private static func firstUnencoded(_ bytes: ArraySlice<UInt8>, allowQuestionMark: Bool) -> String? {
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"), UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"),
                UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","),
                UInt8(ascii: ";"), UInt8(ascii: "="), UInt8(ascii: ":"), UInt8(ascii: "@"), UInt8(ascii: "/"):
                index += 1
            case UInt8(ascii: "?") where allowQuestionMark:
                index += 1
            case UInt8(ascii: "%"):
                guard index + 2 < bytes.endIndex,
                    isHex(bytes[index + 1]), isHex(bytes[index + 2])
                else { return "'%' not followed by two hex digits" }
                index += 3
            case UInt8(ascii: " "):
                return "a space"
            default:
                if byte >= 0x80 { return "a non-ASCII character" }
                return Quote.text(String(UnicodeScalar(byte)))
            }
        }
        return nil
    }

    private static func isHex(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"),
            UInt8(ascii: "A")...UInt8(ascii: "F"):
            true
        default: false
        }
    }
}
