/// What one pull call came to, classified. The same closed set names outcomes in metrics,
/// logs, `pullsync try --json` and `pullsync explain`.
public enum PullOutcome: Sendable, Hashable {
    /// A storable UID; `expiresAt`, when the partner gives one, overrides the partner's TTL.
    case uid(String, expiresAt: Timestamp? = nil)
    /// The partner does not know this EC (`404` or a manifest's not-found status).
    case notFound
    /// `200` with a null, missing or blank UID.
    case nullUID
    /// Any other status, redirects included.
    case httpError(status: Int)
    case timeout
    case transportError
    case tlsError
    /// The body or the UID was over its limit.
    case tooLarge
    /// The body was not the JSON the partner's response shape describes.
    case invalidBody
    /// The URL or resolved address is not allowed.
    case refusedTarget

    /// The outcome's class name: `uid`, `not_found`, `null_uid`, `http_error`, `timeout`,
    /// `transport_error`, `tls_error`, `too_large`, `invalid_body` or `refused_target`.
    package var className: String { outcomeClass.rawValue }

    /// The outcome's class.
    public var outcomeClass: OutcomeClass {
        switch self {
        case .uid: .uid
        case .notFound: .notFound
        case .nullUID: .nullUID
        case .httpError: .httpError
        case .timeout: .timeout
        case .transportError: .transportError
        case .tlsError: .tlsError
        case .tooLarge: .tooLarge
        case .invalidBody: .invalidBody
        case .refusedTarget: .refusedTarget
        }
    }

    /// Whether the outcome counts as the partner failing (for its circuit breaker).
    /// `not_found` and `null_uid` are normal answers; a refused target is our refusal.
    package var isPartnerFailure: Bool {
        switch self {
        case .uid, .notFound, .nullUID, .refusedTarget: false
        case .httpError, .timeout, .transportError, .tlsError, .tooLarge, .invalidBody: true
        }
    }

    /// The outcome for a transport failure.
    package init(_ failure: TransportFailure) {
        switch failure {
        case .timeout: self = .timeout
        case .transportError: self = .transportError
        case .tlsError: self = .tlsError
        case .tooLarge: self = .tooLarge
        case .refusedTarget: self = .refusedTarget
        }
    }
}

/// The class of a ``PullOutcome``, without payload.
public enum OutcomeClass: String, Sendable, Hashable, CaseIterable {
    case uid
    case notFound = "not_found"
    case nullUID = "null_uid"
    case httpError = "http_error"
    case timeout
    case transportError = "transport_error"
    case tlsError = "tls_error"
    case tooLarge = "too_large"
    case invalidBody = "invalid_body"
    case refusedTarget = "refused_target"
}
