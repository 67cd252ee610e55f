/// How one partner's protocol is spoken: build the request, classify the response.
///
/// The manifest-driven ``HTTPPullAdapter`` covers partners that answer
/// `GET {url}?ec_id=…` with `{"uid": "…"}`; a compiled adapter covers the rest.
/// The kernel checks the built URL against the partner's allow-list before sending, so an
/// adapter can't send anywhere the manifest doesn't allow.
public protocol PartnerAdapter: Sendable {
    /// Builds the request for one EC.
    func makeRequest(for context: PullContext) throws(AdapterError) -> PullRequest

    /// Classifies what the transport returned.
    func classify(_ result: TransportResult, context: PullContext) -> PullOutcome
}

/// An adapter could not build a request. The message must not contain secrets.
public struct AdapterError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, for logs and `pullsync explain`; never holds a secret.
    public var message: String
    /// Creates the error with `message`, which must not contain a secret.
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Limits on what a partner may hand back.
package enum ResponseLimits {
    /// UIDs longer than this many UTF-8 bytes are refused.
    package static let maxUIDBytes = 512
    /// Bodies longer than this are refused without being read whole.
    package static let maxBodyBytes = 64 * 1024
}
