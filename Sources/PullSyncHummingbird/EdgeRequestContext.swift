public import Hummingbird
public import NIOCore

/// A request context for pull sync on Hummingbird: the basics plus the TCP peer,
/// which the EC issuer hashes when no client-IP header is configured (`ClientIPSource.socketPeer`).
public struct EdgeRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }
}
