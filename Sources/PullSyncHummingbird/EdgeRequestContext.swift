public import Hummingbird
public import NIOCore

/// A request context for pull sync on Hummingbird: the basics plus the TCP peer,
/// which the EC issuer hashes when no client-IP header is configured (`ClientIPSource.socketPeer`),
/// and pull sync's view of the request for route handlers (``pullSync``).
public struct EdgeRequestContext: PullSyncRequestContext, RemoteAddressRequestContext {
    /// Hummingbird's per-request state (logger, route parameters and the like), as `RequestContext` requires.
    public var coreContext: CoreRequestContextStorage
    /// The TCP peer's address; `nil` when the channel doesn't know it.
    public let remoteAddress: SocketAddress?
    /// What ``PullSyncMiddleware`` found: the EC, the consent, the request's EIDs.
    public var pullSync = PullSyncRequestState()

    /// Creates the context for a request on `source`'s channel.
    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }
}
