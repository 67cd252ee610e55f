public import Hummingbird
public import NIOCore

/// The request context of the reference edge service: Hummingbird's basics plus the TCP peer,
/// which the EC issuer hashes when no client-IP header is configured.
public struct EdgeRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }
}
