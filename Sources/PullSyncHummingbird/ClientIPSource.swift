import HTTPTypes
public import Hummingbird

/// Where the browser's IP address comes from.
public enum ClientIPSource: Sendable, Hashable {
    /// The TCP peer (the context must conform to `RemoteAddressRequestContext`).
    case socketPeer
    /// The first address in this header, for services behind a proxy or CDN
    /// (`X-Forwarded-For`, `CF-Connecting-IP`, …). Only trust a header your proxy sets.
    case header(String)

    /// The client IP of `request`, or `nil` when it can't be told.
    public func clientIP<Context: RequestContext>(of request: Request, context: Context) -> String? {
        switch self {
        case .socketPeer:
            return (context as? any RemoteAddressRequestContext)?.remoteAddress?.ipAddress
        case .header(let name):
            guard let field = HTTPField.Name(name), let value = request.headers[field] else { return nil }
            let first = value.split(separator: ",", maxSplits: 1).first.map {
                String($0.filter { $0 != " " && $0 != "\t" })
            }
            guard let first, !first.isEmpty, first.utf8.count <= 64 else { return nil }
            return first
        }
    }
}
