public import Hummingbird
public import NIOCore

/// A request context for pull sync on Hummingbird: the basics plus the TCP peer,
/// which the EC issuer hashes when no client-IP header is configured (`ClientIPSource.socketPeer`),
/// and pull sync's view of the request for route handlers (``pullSync``).
public struct EdgeRequestContext: PullSyncRequestContext, RemoteAddressRequestContext {
    /// Hummingbird's per-request state (logger, route parameters and the like), as `RequestContext` requires.
    public var coreContext: CoreRequestContextStorage
    /// What ``PullSyncMiddleware`` found: the EC, the consent, the request's EIDs.
    public var pullSync = PullSyncRequestState()
    /// Read from only when the peer is asked for: NIO's cached address costs a generic type
    /// lookup under a lock on every read (about a quarter of a microsecond a request), and most
    /// requests never need it (a returning browser's, or any behind a client-IP header).
    private let channel: any Channel

    /// The TCP peer's address; `nil` when the channel doesn't know it.
    public var remoteAddress: SocketAddress? { channel.remoteAddress }

    /// Creates the context for a request on `source`'s channel.
    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }
}
