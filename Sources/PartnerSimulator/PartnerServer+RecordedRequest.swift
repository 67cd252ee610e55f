import Foundation

extension PartnerServer {
    /// A request as the server received it, so tests can check what the client actually sent.
    public struct RecordedRequest: Sendable {
        /// One `name=value` pair of the query string, percent-decoded (`+` is kept, as in `URLComponents`).
        public struct QueryItem: Sendable, Equatable {
            /// The item's name, percent-decoded.
            public var name: String
            /// `nil` when the item has no `=`.
            public var value: String?

            /// Creates an item; a `nil` value is an item without `=`.
            public init(name: String, value: String?) {
                self.name = name
                self.value = value
            }
        }

        /// The request method, e.g. `GET`.
        public let method: String
        /// The request target as sent: path and query.
        public let uri: String
        /// The path part of ``uri`` (what scripts match on).
        public let path: String
        /// The query items in order.
        public let queryItems: [QueryItem]
        /// The header fields in order, names as sent.
        public let headers: [(String, String)]
        /// The request body.
        public let body: [UInt8]
        /// When the request head arrived.
        public let arrivedAt: ContinuousClock.Instant
        /// Which connection carried the request (numbered from 0 per server): equal numbers mean the
        /// client reused a kept-alive connection.
        public let connectionNumber: Int

        init(
            method: String,
            uri: String,
            headers: [(String, String)],
            body: [UInt8],
            arrivedAt: ContinuousClock.Instant,
            connectionNumber: Int
        ) {
            self.method = method
            self.uri = uri
            let (path, query) = Self.split(uri)
            self.path = path
            self.queryItems = query.map(Self.parseQuery) ?? []
            self.headers = headers
            self.body = body
            self.arrivedAt = arrivedAt
            self.connectionNumber = connectionNumber
        }

        /// The first value of header `name` (case-insensitive).
        public func header(_ name: String) -> String? {
            headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1
        }

        /// The value of the first query item called `name`.
        public func queryValue(_ name: String) -> String? {
            queryItems.first { $0.name == name }?.value
        }

        /// Path and query of a request target (an absolute-form target keeps only its path).
        static func split(_ uri: String) -> (path: String, query: String?) {
            var target = Substring(uri)
            if let fragment = target.firstIndex(of: "#") {
                target = target[..<fragment]
            }
            if !target.hasPrefix("/"), let scheme = target.range(of: "://") {
                let afterAuthority = target[scheme.upperBound...]
                target =
                    afterAuthority.firstIndex(where: { $0 == "/" || $0 == "?" }).map { afterAuthority[$0...] } ?? "/"
            }
            guard let mark = target.firstIndex(of: "?") else {
                return (String(target), nil)
            }
            return (String(target[..<mark]), String(target[target.index(after: mark)...]))
        }

        private static func parseQuery(_ query: String) -> [QueryItem] {
            query.split(separator: "&", omittingEmptySubsequences: true).map { pair in
                guard let equals = pair.firstIndex(of: "=") else {
                    return QueryItem(name: decode(pair), value: nil)
                }
                return QueryItem(name: decode(pair[..<equals]), value: decode(pair[pair.index(after: equals)...]))
            }
        }

        private static func decode(_ text: Substring) -> String {
            String(text).removingPercentEncoding ?? String(text)
        }
    }
}
