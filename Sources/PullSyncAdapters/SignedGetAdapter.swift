import Crypto
public import PullSyncKernel
public import PartnerAdapterKit

/// `signed-get`: `GET {url}?ec_id={ec_id}` signed with HMAC-SHA256, for partners that
/// authenticate each request by a signature rather than a bearer token.
///
/// The string signed is the method, the path, the query and the timestamp, each on its own line,
/// exactly as sent:
///
/// ```
/// GET
/// /v2/uid
/// src=edge&ec_id=3f6c…AbC123
/// 1700000000
/// ```
///
/// and the signature goes in one header (`signature_header`, default `X-Signature`):
/// `t=1700000000,kid=KEY_ID,sig=HEX`, `HEX` the lowercase hex HMAC-SHA256 of that string keyed
/// with `secret`. A manifest's templates can't express this: the signature covers the rendered
/// query. The answer is read as the manifest-driven adapter reads it: `200` with a UID at
/// `uid_field`, `404` for an EC the partner doesn't know.
public struct SignedGetAdapter: CompiledAdapter {
    /// `signed-get` and its parameters (`AdapterDescriptor.signedGet`).
    public static let descriptor = AdapterDescriptor.signedGet

    /// `pull.url`; its fixed query (if any) is signed too.
    public let url: PartnerURL
    /// `key_id`, sent as `kid=`.
    public let keyID: String
    /// `signature_header`.
    public let signatureHeader: String
    /// `uid_field`, as object keys.
    public let uidPath: [String]
    private let keyReference: SecretReference
    private let key: Secret?

    /// Creates the adapter from parameters checked against `descriptor`; an unresolved `secret`
    /// fails each request rather than this.
    public init(configuration: CompiledAdapterConfiguration) throws(AdapterError) {
        let parameters = configuration.parameters
        guard let keyID = parameters.text("key_id"),
            let keyReference = parameters.secretReference("secret"),
            let signatureHeader = parameters.text("signature_header"),
            let uidPath = parameters.fieldPath("uid_field")
        else {
            throw AdapterError("signed-get needs parameters checked against its descriptor")
        }
        self.url = configuration.url
        self.keyID = keyID
        self.signatureHeader = signatureHeader
        self.uidPath = uidPath
        self.keyReference = keyReference
        // Unresolved (check, explain): building a request fails, naming the reference.
        self.key = try? configuration.secret("secret")
    }

    /// `GET` of the URL with `ec_id`, signed at `context.now` in `signatureHeader`. Throws when the
    /// key is unresolved.
    public func makeRequest(for context: PullContext) throws(AdapterError) -> PullRequest {
        guard let key else { throw AdapterError("secret \(keyReference) is not resolved") }
        let timestamp = String(context.now.secondsSinceEpoch)
        let query = [(name: "ec_id", value: context.edgeCookie.value)]
        let stringToSign = ["GET", url.path, Self.queryString(url: url, query: query), timestamp].joined(
            separator: "\n"
        )
        let signature = Self.hexHMAC(Array(stringToSign.utf8), key: key)
        return PullRequest(
            method: "GET",
            url: url,
            query: query,
            headers: [
                // A signature is a credential for as long as the partner accepts its timestamp.
                PullRequest.Header(
                    name: signatureHeader,
                    value: "t=\(timestamp),kid=\(keyID),sig=\(signature)",
                    isSecret: true
                )
            ]
        )
    }

    /// A `200` is read for the UID at `uidPath`; `404` is not found, any other status an HTTP error.
    public func classify(_ result: TransportResult, context: PullContext) -> PullOutcome {
        switch result {
        case .failure(let failure):
            return PullOutcome(failure)
        case .response(let status, _, let body):
            if status == 404 { return .notFound }
            guard status == 200 else { return .httpError(status: status) }
            return HTTPPullAdapter.extractUID(from: body, path: uidPath)
        }
    }

    /// The query as it goes on the wire (after `?`): the URL's fixed query, then `query`.
    static func queryString(url: PartnerURL, query: [(name: String, value: String)]) -> String {
        let full = url.rendered(query: query).utf8
        let prefix = (url.origin + url.path).utf8.count
        return String(decoding: full.dropFirst(prefix + 1), as: UTF8.self)
    }

    /// Lowercase hex of HMAC-SHA256(`key`, `message`).
    static func hexHMAC(_ message: [UInt8], key: Secret) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: Array(key.reveal().utf8)))
        let digits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        hex.reserveCapacity(64)
        for byte in code {
            hex.append(digits[Int(byte >> 4)])
            hex.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: hex, as: UTF8.self)
    }
}
