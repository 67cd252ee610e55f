public import Hummingbird
public import NIOCore

/// A request context for pull sync on Hummingbird: the basics plus the TCP peer,
/// which the EC issuer hashes when no client-IP header is configured (`ClientIPSource.socketPeer`).
public struct EdgeRequestContext: RequestContext, RemoteAddressRequestContext {
    /// Hummingbird's per-request state (logger, route parameters and the like), as `RequestContext` requires.
    public var coreContext: CoreRequestContextStorage
    /// The TCP peer's address; `nil` when the channel doesn't know it.
    public let remoteAddress: SocketAddress?

    /// Creates the context for a request on `source`'s channel.
    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }
}
