/// A partner's pull URL, split into the parts the kernel checks and renders.
///
/// Parsing a user-supplied string happens where manifests are read; the kernel only renders.
public struct PartnerURL: Sendable, Hashable, CustomStringConvertible {
    /// `https`, or `http` for loopback hosts behind the development switch.
    public var scheme: String
    /// The normalized host name (lowercased, no trailing dot).
    public var host: String
    /// An explicit port, if the URL gives one.
    public var port: Int?
    /// The path, already percent-encoded; `/` when empty.
    public var path: String
    /// Fixed query items from the URL itself (already percent-encoded), kept in order.
    public var fixedQuery: String?

    /// Creates a URL from parts already checked. The scheme is lowercased and the host normalized;
    /// a `path` without a leading `/` gets one, a fragment is dropped from `path` and `fixedQuery`,
    /// and an empty `fixedQuery` is `nil`.
    public init(scheme: String, host: String, port: Int? = nil, path: String = "/", fixedQuery: String? = nil) {
        self.scheme = scheme.lowercased()
        self.host = HostName.normalize(host)
        self.port = port
        // A path always starts with "/" (so nothing can pass for userinfo or a host) and
        // nothing carries a fragment.
        let bare = path.prefix { $0 != "#" }
        self.path = bare.hasPrefix("/") ? String(bare) : "/" + bare
        let query = fixedQuery.map { String($0.prefix { $0 != "#" }) }
        self.fixedQuery = query?.isEmpty == true ? nil : query
    }

    /// `scheme://host[:port]`.
    package var origin: String {
        var result = scheme + "://" + (host.contains(":") ? "[\(host)]" : host)
        if let port { result += ":\(port)" }
        return result
    }

    /// The URL with `query` items appended (each name and value percent-encoded).
    package func rendered(query: [(name: String, value: String)]) -> String {
        var result = origin + path
        var separator = "?"
        if let fixedQuery {
            result += separator + fixedQuery
            separator = "&"
        }
        for item in query {
            result +=
                separator + PercentEncoding.encodeQueryComponent(item.name) + "="
                + PercentEncoding.encodeQueryComponent(item.value)
            separator = "&"
        }
        return result
    }

    public var description: String { rendered(query: []) }
}

/// RFC 3986 percent-encoding for query names and values.
package enum PercentEncoding {
    /// Encodes everything but the unreserved characters `A-Z a-z 0-9 - . _ ~`.
    package static func encodeQueryComponent(_ string: some StringProtocol) -> String {
        let hex: [UInt8] = Array("0123456789ABCDEF".utf8)
        var output: [UInt8] = []
        output.reserveCapacity(string.utf8.count)
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                output.append(byte)
            default:
                output.append(UInt8(ascii: "%"))
                output.append(hex[Int(byte >> 4)])
                output.append(hex[Int(byte & 0x0F)])
            }
        }
        return String(decoding: output, as: UTF8.self)
    }
}
