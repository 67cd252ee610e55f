import HTTPTypes
public import Hummingbird
import NIOCore
import PullSync

/// Where the browser's IP address comes from.
public enum ClientIPSource: Sendable, Hashable {
    /// The TCP peer (the context must conform to `RemoteAddressRequestContext`).
    case socketPeer
    /// The first address in this header, for services behind a proxy or CDN
    /// (`X-Forwarded-For`, `CF-Connecting-IP`, …). Only trust a header your proxy sets.
    case header(String)

    /// The client IP of `request`, in canonical form (`::ffff:1.2.3.4` and `1.2.3.4:5555` are
    /// `1.2.3.4`), or `nil` when there is no valid IP address (then no EC is issued).
    public func clientIP<Context: RequestContext>(of request: Request, context: Context) -> String? {
        Reader(self).clientIP(of: request, context: context)
    }

    /// This source made ready to read many requests: a header's name is checked and lowercased
    /// once (the middleware's), not on every new browser's page view.
    package struct Reader: Sendable {
        private enum Place: Sendable {
            case socketPeer
            /// `nil`: not a valid field name, so no request has it.
            case header(HTTPField.Name?)
        }

        private let place: Place

        package init(_ source: ClientIPSource) {
            switch source {
            case .socketPeer: place = .socketPeer
            case .header(let name): place = .header(HTTPField.Name(name))
            }
        }

        /// ``ClientIPSource/clientIP(of:context:)``.
        package func clientIP<Context: RequestContext>(of request: Request, context: Context) -> String? {
            switch place {
            case .socketPeer:
                guard let peer = Self.remoteAddress(of: context) else { return nil }
                return Self.ipAddress(of: peer)?.canonical.description
            case .header(let name):
                guard let name else { return nil }
                // The first non-empty entry of the fields with that name, read where it lies (no
                // string of all of them joined, no array of entries), searched as bytes (searching
                // `Character`s walks grapheme clusters).
                let comma = UInt8(ascii: ",")
                for field in request.headers where field.name == name {
                    let value = field.value
                    guard let start = value.utf8.firstIndex(where: { $0 != comma }) else { continue }
                    let end = value.utf8[start...].firstIndex(of: comma) ?? value.endIndex
                    return ClientIPSource.normalize(value[start..<end])
                }
                return nil
            }
        }
    }

    /// A literal IP address, with an optional port, as one canonical string; `nil` otherwise.
    package static func normalize(_ text: some StringProtocol) -> String? {
        // Spaces and tabs are dropped wherever they are; most values have none (no copy then).
        let spaced = text.utf8.contains { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
        var candidate = spaced ? Substring(text).filter { $0 != " " && $0 != "\t" }[...] : Substring(text)
        guard !candidate.isEmpty, candidate.utf8.count <= 64 else { return nil }
        // Searched as bytes (the delimiters are ASCII): searching `Character`s walks grapheme clusters.
        let utf8 = candidate.utf8
        if utf8.first == UInt8(ascii: "["), let close = utf8.firstIndex(of: UInt8(ascii: "]")) {
            candidate = candidate[utf8.index(after: utf8.startIndex)..<close]  // [v6]:port
        } else if let colon = utf8.firstIndex(of: UInt8(ascii: ":")),
            !utf8[utf8.index(after: colon)...].contains(UInt8(ascii: ":"))
        {
            candidate = candidate[..<colon]  // v4:port
        }
        return IPAddress(candidate)?.canonical.description
    }
}

extension ClientIPSource.Reader {
    /// The context's TCP peer. The context's type is asked, not the context: casting the value to
    /// `any RemoteAddressRequestContext` would box a copy of the whole context on every new
    /// browser's page view.
    static func remoteAddress<Context: RequestContext>(of context: Context) -> SocketAddress? {
        guard let type = Context.self as? any RemoteAddressRequestContext.Type else { return nil }
        func read<Remote: RemoteAddressRequestContext>(_: Remote.Type) -> SocketAddress? {
            (context as? Remote)?.remoteAddress
        }
        return read(type)
    }

    /// The address's bytes as they are (no text written by `inet_ntop` and parsed again).
    static func ipAddress(of address: SocketAddress) -> IPAddress? {
        switch address {
        case .v4(let v4): IPAddress(v4.address.sin_addr)
        case .v6(let v6): IPAddress(v6.address.sin6_addr)
        case .unixDomainSocket: nil
        }
    }
}
