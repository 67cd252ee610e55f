public import PullSyncKernel

/// The default, manifest-driven partner protocol: `GET {url}?{query}` with templated
/// headers and `Authorization: Bearer {token}`, answered by JSON holding the UID.
public struct HTTPPullAdapter: PartnerAdapter {
    /// Everything a manifest says about the request and the response.
    public struct Configuration: Sendable, Hashable {
        /// How the token is sent.
        public enum Auth: Sendable, Hashable {
            /// No token.
            case none
            /// `Authorization: Bearer {token}`.
            case bearer(SecretReference)
            /// Only as `{token}` in header templates.
            case headerTemplate(SecretReference)

            /// The secret reference, if any.
            public var reference: SecretReference? {
                switch self {
                case .none: nil
                case .bearer(let reference), .headerTemplate(let reference): reference
                }
            }
        }

        /// `pull.url`: where the request goes; the query items are appended to it.
        public var url: PartnerURL
        /// Query items, in order. Default: `ec_id={ec_id}`.
        public var query: [QueryItem]
        /// Extra headers, in order.
        public var headers: [QueryItem]
        /// How the token is sent. Default no token.
        public var auth: Auth
        /// Object keys leading to the UID; default `["uid"]`.
        public var uidPath: [String]
        /// Statuses that mean "this partner doesn't know the EC"; default `[404]`.
        public var notFoundStatuses: Set<Int>

        /// One name and its value template.
        public struct QueryItem: Sendable, Hashable {
            /// The query item's or header's name, as sent.
            public var name: String
            /// The value, rendered per request (`{ec_id}`, `{token}`, consent strings, ...).
            public var value: Template
            /// Creates an item `name` whose value renders `value`.
            public init(name: String, value: Template) {
                self.name = name
                self.value = value
            }
        }

        /// The request method. Default `GET`; an opt-out endpoint may take `POST` or `DELETE`
        /// (``optOutMethods``), sent without a body.
        public var method: String

        /// The methods a manifest's `optout.method` may name.
        public static let optOutMethods: Set<String> = ["GET", "POST", "DELETE"]

        /// Creates a configuration; every default is the one documented on its property.
        public init(
            url: PartnerURL,
            method: String = "GET",
            query: [QueryItem]? = nil,
            headers: [QueryItem] = [],
            auth: Auth = .none,
            uidPath: [String] = ["uid"],
            notFoundStatuses: Set<Int> = [404]
        ) {
            self.url = url
            self.method = method
            self.query = query ?? [QueryItem(name: "ec_id", value: Self.ecIDTemplate)]
            self.headers = headers
            self.auth = auth
            self.uidPath = uidPath
            self.notFoundStatuses = notFoundStatuses
        }

        // `{ec_id}` always parses.
        static let ecIDTemplate: Template = try! Template(parsing: "{ec_id}")
    }

    /// What the manifest says about the request and the response.
    public let configuration: Configuration
    private let token: Secret?
    private let queryUsesToken: Bool
    /// Per configured header, whether its value holds the token (redacted in printouts).
    private let headerIsSecret: [Bool]
    /// The headers, when nothing in them depends on the request (fixed values, the token): built
    /// once and shared by every request, instead of an array and strings per call.
    private let fixedHeaders: [PullRequest.Header]?

    /// `token` is the resolved secret of `configuration.auth`, or `nil` when unresolved (then
    /// building a request fails, naming the reference).
    public init(configuration: Configuration, token: Secret?) {
        self.configuration = configuration
        self.token = token
        self.queryUsesToken = configuration.query.contains { $0.value.variables.contains(.token) }
        let headerIsSecret = configuration.headers.map { $0.value.variables.contains(.token) }
        self.headerIsSecret = headerIsSecret
        let fixed = configuration.headers.allSatisfy { $0.value.variables.isSubset(of: [.token]) }
            && (configuration.auth.reference == nil || token != nil)
        // Built as a request would build them; a header that can't be sent leaves them per
        // request, where building throws.
        self.fixedHeaders =
            fixed
            ? try? Self.headers(configuration, token: token, isSecret: headerIsSecret) { _ in token?.reveal() ?? "" }
            : nil
    }

    /// The method (`GET` by default) of the URL with the rendered query and headers, and the
    /// bearer token when `auth` says so.
    /// Throws when the token is unresolved, a query template uses `{token}`, or a rendered header
    /// value carries control characters or more than 8 KiB.
    public func makeRequest(for context: PullContext) throws(AdapterError) -> PullRequest {
        // A token in a URL ends up in access logs and printouts; manifests refuse it, and so do we.
        if queryUsesToken { throw AdapterError("query templates may not use {token}; send it in a header") }
        if let reference = configuration.auth.reference, token == nil {
            throw AdapterError("secret \(reference) is not resolved")
        }
        let value: (TemplateVariable) -> String = { variable in
            Self.value(of: variable, context: context, token: self.token)
        }
        let query = configuration.query.map { (name: $0.name, value: $0.value.render(value)) }
        let headers: [PullRequest.Header]
        if let fixedHeaders {
            headers = fixedHeaders
        } else {
            headers = try Self.headers(configuration, token: token, isSecret: headerIsSecret, value: value)
        }
        return PullRequest(method: configuration.method, url: configuration.url, query: query, headers: headers)
    }

    /// The configured headers rendered with `value`, then the bearer token when `auth` says so.
    private static func headers(
        _ configuration: Configuration,
        token: Secret?,
        isSecret: [Bool],
        value: (TemplateVariable) -> String
    ) throws(AdapterError) -> [PullRequest.Header] {
        let bearer: Secret? = if case .bearer = configuration.auth { token } else { nil }
        var headers: [PullRequest.Header] = []
        headers.reserveCapacity(configuration.headers.count + (bearer == nil ? 0 : 1))
        for (header, isSecret) in zip(configuration.headers, isSecret) {
            let rendered = header.value.render(value)
            // Values like {gdpr_consent} come from the browser: a line break or control byte
            // would inject a header, and an oversized value would draw a 431 that counts
            // against the partner. Refuse the request instead (not the partner's fault).
            guard Self.isSafeHeaderValue(rendered) else {
                throw AdapterError("header '\(header.name)' would carry control characters or more than 8 KiB")
            }
            headers.append(PullRequest.Header(name: header.name, value: rendered, isSecret: isSecret))
        }
        if let bearer {
            headers.append(PullRequest.Header(name: "Authorization", value: "Bearer " + bearer.reveal(), isSecret: true))
        }
        return headers
    }

    /// A status in `notFoundStatuses` is not found; a `200` is read for the UID at `uidPath`; any
    /// other status is an HTTP error.
    public func classify(_ result: TransportResult, context: PullContext) -> PullOutcome {
        switch result {
        case .failure(let failure):
            return PullOutcome(failure)
        case .response(let status, _, let body):
            if configuration.notFoundStatuses.contains(status) { return .notFound }
            guard status == 200 else { return .httpError(status: status) }
            return Self.extractUID(from: body, path: configuration.uidPath)
        }
    }

    /// Whether `value` may be sent as a header value: at most 8 KiB, no control bytes but tab.
    public static func isSafeHeaderValue(_ value: String) -> Bool {
        var count = 0
        for byte in value.utf8 {
            count += 1
            if count > 8192 || (byte < 0x20 && byte != 0x09) || byte == 0x7F { return false }
        }
        return true
    }

    /// Classifies a 200 body: the string at `path`, or why there is none.
    public static func extractUID(from body: [UInt8], path: [String]) -> PullOutcome {
        guard body.count <= ResponseLimits.maxBodyBytes else { return .tooLarge }
        switch JSONFieldLookup.find(path, in: body) {
        case nil: return .invalidBody
        case .missing?, .null?: return .nullUID
        case .string(let uid)?: return classify(uid: uid)
        case .other?: return .invalidBody
        }
    }

    /// Classifies a parsed 200 answer: the string at `path`, or why there is none (for adapters
    /// that read more than the UID from the same document).
    public static func extractUID(from document: JSONValue, path: [String]) -> PullOutcome {
        switch document.value(at: path) {
        case nil, .null?:
            return .nullUID
        case .string(let uid)?:
            return classify(uid: uid)
        case .some:
            return .invalidBody
        }
    }

    /// A UID string: blank is no UID, and it has a size limit.
    private static func classify(uid: String) -> PullOutcome {
        if uid.allSatisfy(\.isWhitespace) { return .nullUID }
        if uid.utf8.count > ResponseLimits.maxUIDBytes { return .tooLarge }
        return .uid(uid)
    }

    static func value(of variable: TemplateVariable, context: PullContext, token: Secret?) -> String {
        switch variable {
        case .ecID: context.edgeCookie.value
        case .ecHash: context.edgeCookie.hashString
        case .partnerID: context.partnerID
        case .sourceDomain: context.sourceDomain
        case .timestamp: String(context.now.secondsSinceEpoch)
        case .token: token?.reveal() ?? ""
        case .clientIP: context.clientIP ?? ""
        case .gdprConsent: context.consentStrings.tcf ?? ""
        case .gpp: context.consentStrings.gpp ?? ""
        case .gppSID: context.consentStrings.gppSectionIDs.map(String.init).joined(separator: ",")
        case .usPrivacy: context.consentStrings.usPrivacy ?? ""
        }
    }
}
