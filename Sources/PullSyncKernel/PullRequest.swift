/// One outgoing pull request, as an adapter built it.
public struct PullRequest: Sendable, CustomStringConvertible {
    /// One header. Values built from a secret are flagged so that every printout redacts them.
    public struct Header: Sendable, Hashable {
        /// The header's name, as sent.
        public var name: String
        /// The header's value, as sent (redacted in printouts when `isSecret`).
        public var value: String
        /// Whether `value` contains a secret.
        public var isSecret: Bool

        /// Creates a header; set `isSecret` when `value` is built from a secret.
        public init(name: String, value: String, isSecret: Bool = false) {
            self.name = name
            self.value = value
            self.isSecret = isSecret
        }
    }

    /// `GET` or `POST`.
    public var method: String
    /// The target, checked against the partner's allow-list before sending.
    public var url: PartnerURL
    /// Query items appended to `url`, in order.
    public var query: [(name: String, value: String)]
    /// Headers to send, in order.
    public var headers: [Header]
    /// An optional body (for POST adapters).
    public var body: [UInt8]?

    /// Creates a request; by default a `GET` of `url` with no query items, headers or body.
    public init(
        method: String = "GET",
        url: PartnerURL,
        query: [(name: String, value: String)] = [],
        headers: [Header] = [],
        body: [UInt8]? = nil
    ) {
        self.method = method
        self.url = url
        self.query = query
        self.headers = headers
        self.body = body
    }

    /// The full URL to send to.
    package var renderedURL: String { url.rendered(query: query) }

    /// Headers with secret values replaced by `<redacted>`.
    package var redactedHeaders: [(name: String, value: String)] {
        headers.map { ($0.name, $0.isSecret ? "<redacted>" : $0.value) }
    }

    /// `METHOD URL` and the headers, secrets redacted.
    public var description: String {
        let headerText = redactedHeaders.map { "\($0.name): \($0.value)" }.joined(separator: ", ")
        return "\(method) \(renderedURL) [\(headerText)]"
    }
}

extension PullRequest.Header: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// `name: value`, with a secret value redacted.
    public var description: String { "\(name): \(isSecret ? "<redacted>" : value)" }
    public var debugDescription: String { "Header(\(description))" }
    /// Reflection (`dump`, default printing of the enclosing request) shows a secret value redacted.
    public var customMirror: Mirror {
        Mirror(
            self,
            children: ["name": name, "value": isSecret ? "<redacted>" : value, "isSecret": isSecret],
            displayStyle: .struct
        )
    }
}

/// The outcome of sending a ``PullRequest``, before the adapter classifies it.
public enum TransportResult: Sendable {
    /// A complete response; `body` is at most the transport's body limit.
    case response(status: Int, headers: [(name: String, value: String)], body: [UInt8])
    /// No usable response.
    case failure(TransportFailure)
}

/// Ways a send fails before a response can be classified by the adapter.
public enum TransportFailure: String, Sendable, Hashable, CaseIterable {
    case timeout
    case transportError = "transport_error"
    case tlsError = "tls_error"
    /// The body exceeded the limit (declared or streamed).
    case tooLarge = "too_large"
    /// The URL or the resolved address is not allowed.
    case refusedTarget = "refused_target"
}

/// Limits a transport enforces on every send.
public struct TransportLimits: Sendable, Hashable {
    /// The whole call, connect to last byte.
    public var timeout: Duration
    /// Largest body read; larger bodies are abandoned (default 64 KiB).
    public var maxBodyBytes: Int

    package init(timeout: Duration, maxBodyBytes: Int = 64 * 1024) {
        self.timeout = timeout
        self.maxBodyBytes = maxBodyBytes
    }
}

/// Sends pull requests. The kernel never touches sockets; deployments plug in a transport
/// (AsyncHTTPClient in `PullSync`, a scripted one in tests, another on other edge runtimes).
///
/// Implementations never follow redirects and never retry.
public protocol PullTransport: Sendable {
    /// Sends `request` once and returns what came back, within `limits`.
    func send(_ request: PullRequest, limits: TransportLimits) async -> TransportResult
}
