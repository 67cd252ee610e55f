public import PullSyncKernel
public import PartnerAdapterKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `json-post`: `POST {url}` with a JSON body, answered by JSON with a nested UID and the UID's
/// expiry, which overrides the partner's TTL. A manifest can't express either half: its requests
/// are GETs, and it has no expiry.
///
/// The body (keys sorted; `consent` only with `send_consent`, holding the strings present):
///
/// ```json
/// {"account_id":"pub-42","consent":{"gdpr":"CPx…","gpp":"DBA…","gpp_sid":[7],"us_privacy":"1YNN"},"ec_id":"3f6c…AbC123","ts":1700000000}
/// ```
///
/// The answer: `200` with a string at `uid_field` is a UID (null, missing or blank: `null_uid`),
/// and a number at `expiry_field`, when present, is when it expires: a Unix time or seconds from
/// now (`expiry_format`), cut to `max_expiry` from now. An expiry that is not a number, or that
/// has already passed, makes the answer `invalid_body`. `404` is `not_found`; any other status is
/// `http_error`.
public struct JSONPostAdapter: CompiledAdapter {
    /// `json-post` and its parameters (`AdapterDescriptor.jsonPost`).
    public static let descriptor = AdapterDescriptor.jsonPost

    /// How a partner writes the expiry.
    public enum ExpiryFormat: String, Sendable, Hashable {
        /// Seconds since the Unix epoch.
        case unixSeconds = "unix_seconds"
        /// Seconds from the time of the request.
        case secondsFromNow = "seconds_from_now"
    }

    /// `pull.url`.
    public let url: PartnerURL
    /// `account_id`.
    public let accountID: String
    /// `uid_field`, as object keys.
    public let uidPath: [String]
    /// `expiry_field`, as object keys.
    public let expiryPath: [String]
    /// `expiry_format`.
    public let expiryFormat: ExpiryFormat
    /// `max_expiry`.
    public let maxExpiry: Duration
    /// `send_consent`.
    public let sendsConsent: Bool
    private let tokenReference: SecretReference?
    private let token: Secret?

    /// Creates the adapter from parameters checked against `descriptor`; an unresolved `token`
    /// fails each request rather than this.
    public init(configuration: CompiledAdapterConfiguration) throws(AdapterError) {
        let parameters = configuration.parameters
        guard let accountID = parameters.text("account_id"),
            let uidPath = parameters.fieldPath("uid_field"),
            let expiryPath = parameters.fieldPath("expiry_field"),
            let expiryFormat = parameters.text("expiry_format").flatMap(ExpiryFormat.init(rawValue:)),
            let maxExpiry = parameters.duration("max_expiry"),
            let sendsConsent = parameters.boolean("send_consent")
        else {
            throw AdapterError("json-post needs parameters checked against its descriptor")
        }
        self.url = configuration.url
        self.accountID = accountID
        self.uidPath = uidPath
        self.expiryPath = expiryPath
        self.expiryFormat = expiryFormat
        self.maxExpiry = maxExpiry
        self.sendsConsent = sendsConsent
        self.tokenReference = parameters.secretReference("token")
        // Unresolved (check, explain): building a request fails, naming the reference.
        self.token = try? configuration.optionalSecret("token")
    }

    /// `POST` of the JSON body for `context`'s EC, with the bearer token when `token` is given.
    /// Throws when the token is unresolved.
    public func makeRequest(for context: PullContext) throws(AdapterError) -> PullRequest {
        var headers = [PullRequest.Header(name: "Content-Type", value: "application/json")]
        if let tokenReference {
            guard let token else { throw AdapterError("secret \(tokenReference) is not resolved") }
            headers.append(PullRequest.Header(name: "Authorization", value: "Bearer " + token.reveal(), isSecret: true))
        }
        let strings = context.consentStrings
        let body = MatchRequest(
            accountID: accountID,
            ecID: context.edgeCookie.value,
            timestamp: context.now.secondsSinceEpoch,
            consent: sendsConsent
                ? MatchRequest.Consent(
                    gdpr: strings.tcf,
                    gpp: strings.gpp,
                    gppSectionIDs: strings.gppSectionIDs.isEmpty ? nil : strings.gppSectionIDs,
                    usPrivacy: strings.usPrivacy
                ) : nil
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let bytes: [UInt8]
        do {
            bytes = Array(try encoder.encode(body))
        } catch {
            throw AdapterError("the request body could not be encoded")
        }
        return PullRequest(method: "POST", url: url, headers: headers, body: bytes)
    }

    /// Reads the UID and its expiry from a `200`, as the type's documentation describes; `404` is not
    /// found, any other status an HTTP error.
    public func classify(_ result: TransportResult, context: PullContext) -> PullOutcome {
        switch result {
        case .failure(let failure):
            return PullOutcome(failure)
        case .response(let status, _, let body):
            if status == 404 { return .notFound }
            guard status == 200 else { return .httpError(status: status) }
            guard body.count <= ResponseLimits.maxBodyBytes else { return .tooLarge }
            guard let members = JSONValue.parseObject(body) else { return .invalidBody }
            let document = JSONValue.object(members)
            let outcome = HTTPPullAdapter.extractUID(from: document, path: uidPath)
            guard case .uid(let uid, _) = outcome else { return outcome }
            switch document.value(at: expiryPath) {
            case nil, .null?:
                return .uid(uid)
            case .number(let value)?:
                guard let expiresAt = expiry(value, now: context.now) else { return .invalidBody }
                return .uid(uid, expiresAt: expiresAt)
            case .some:
                return .invalidBody
            }
        }
    }

    /// When a UID with expiry `value` expires, cut to `max_expiry`; `nil` when that is not in
    /// the future.
    func expiry(_ value: Double, now: Timestamp) -> Timestamp? {
        guard value.isFinite else { return nil }
        let latest = now + maxExpiry
        let expiresAt: Timestamp
        // Far outside [now, latest] the answer is known without converting (which could overflow).
        switch expiryFormat {
        case .unixSeconds:
            if value <= Double(now.secondsSinceEpoch) - 1 { return nil }
            if value >= Double(latest.secondsSinceEpoch) + 1 { return latest }
            expiresAt = Timestamp(nanosecondsSinceEpoch: Self.nanoseconds(value))
        case .secondsFromNow:
            if value <= 0 { return nil }
            if value >= maxExpiry.seconds + 1 { return latest }
            expiresAt = now + .nanoseconds(Self.nanoseconds(value))
        }
        guard expiresAt > now else { return nil }
        return min(expiresAt, latest)
    }

    /// `seconds` (within Int64 range once scaled) in whole nanoseconds, without the rounding of
    /// scaling a large Double.
    static func nanoseconds(_ seconds: Double) -> Int64 {
        let whole = seconds.rounded(.down)
        return Int64(whole) * 1_000_000_000 + Int64(((seconds - whole) * 1e9).rounded(.down))
    }
}

/// The body `json-post` sends.
struct MatchRequest: Encodable {
    struct Consent: Encodable {
        var gdpr: String?
        var gpp: String?
        var gppSectionIDs: [Int]?
        var usPrivacy: String?

        enum CodingKeys: String, CodingKey {
            case gdpr, gpp
            case gppSectionIDs = "gpp_sid"
            case usPrivacy = "us_privacy"
        }
    }

    var accountID: String
    var ecID: String
    var timestamp: Int64
    var consent: Consent?

    enum CodingKeys: String, CodingKey {
        case accountID = "account_id"
        case ecID = "ec_id"
        case timestamp = "ts"
        case consent
    }
}
