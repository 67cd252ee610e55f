import AsyncHTTPClient
import Foundation
import HTTPTypes
public import Hummingbird
public import Logging
public import Prometheus
public import PullSync
import PullSyncHummingbird
import ServiceLifecycle

/// The reference edge service: a Hummingbird application serving organic pages, running pull
/// sync after each response, with the admin API, under one `ServiceGroup` that shuts down on
/// SIGTERM/SIGINT (server first, then the dispatcher's grace period, then the transport).
public struct EdgeService: Sendable {
    /// Why the service can't start.
    public struct StartError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// The application (run it with `runService()`, or test it with HummingbirdTesting).
    public let application: Application<RouterResponder<EdgeRequestContext>>
    public let dispatcher: PullDispatcher
    public let graph: any IdentityGraph
    /// The partners it started with (``reloader`` has the reloads since).
    public let loaded: LoadedPartners
    /// The metrics the admin API exposes.
    public let metrics: PrometheusCollectorRegistry
    /// Reloads the partners on `SIGHUP` and `POST /_pullsync/reload`.
    public let reloader: PartnerReloader

    /// Builds the service.
    ///
    /// - Parameters:
    ///   - environment: reads `PULLSYNC_ADMIN_TOKEN` and `PULLSYNC_EC_SECRET` (never logged);
    ///     default the process environment.
    ///   - secrets: resolves token references; default the environment and files.
    ///   - hostResolver: resolves partner hosts; default the system resolver.
    ///   - connectTimeout: the partner transport's connect timeout; default its own (1 s).
    ///   - wrapTransport: lets a caller wrap the HTTP transport (the demo redirects ports).
    ///   - onServerRunning: called with the bound port once the server listens.
    public static func make(
        configuration: EdgeServiceConfiguration,
        environment: [String: String]? = nil,
        secrets: (any SecretResolver)? = nil,
        hostResolver: (any HostResolver)? = nil,
        connectTimeout: Duration? = nil,
        wrapTransport: (@Sendable (any PullTransport) -> any PullTransport)? = nil,
        logger: Logger,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws -> EdgeService {
        let environment = environment ?? ProcessInfo.processInfo.environment
        let secrets = secrets ?? EnvironmentSecretResolver(environment: environment)
        let loaded = PartnerLoader.load(paths: [configuration.partnersDirectory], secrets: secrets)
        for diagnostic in loaded.diagnostics { logger.error("\(diagnostic.description)") }

        let store: PullSyncStore
        do {
            store = try await PullSyncStore.open(configuration.store, logger: logger)
        } catch {
            throw StartError(description: error.description)
        }
        let secret: [UInt8]
        if let configured = environment["PULLSYNC_EC_SECRET"] {
            guard configured.utf8.count >= 16 else {
                throw StartError(description: "PULLSYNC_EC_SECRET must be at least 16 bytes")
            }
            secret = Array(configured.utf8)
        } else {
            secret = try await store.ecSecret()
        }

        let metrics = PrometheusCollectorRegistry()
        let factory = PrometheusMetricsFactory(registry: metrics)
        var transportConfiguration = HTTPPullTransport.Configuration(
            allowLoopback: configuration.allowLoopback,
            additionalTrustRootFiles: configuration.tlsCAFile.map { [$0] } ?? []
        )
        if let hostResolver { transportConfiguration.resolver = hostResolver }
        if let connectTimeout { transportConfiguration.connectTimeout = connectTimeout }
        // Partner TLS and I/O on a loop of their own: they never hold up the loops serving pages.
        let transport = HTTPPullTransport(
            configuration: transportConfiguration,
            dedicatedThreads: 1,
            logger: logger
        )
        var kernelConfiguration = configuration.pullSync
        kernelConfiguration.allowLoopback = configuration.allowLoopback
        let kernel = PullKernel(
            registry: loaded.registry,
            configuration: kernelConfiguration,
            graph: store.graph,
            rateLimiter: store.rateLimiter,
            transport: wrapTransport?(transport) ?? transport,
            metricsFactory: factory,
            logger: logger
        )
        let dispatcher = PullDispatcher(kernel: kernel)
        let reloader = PartnerReloader(
            paths: [configuration.partnersDirectory],
            secrets: secrets,
            dispatcher: dispatcher,
            initial: loaded,
            metricsFactory: factory,
            logger: logger
        )

        let router = Router(context: EdgeRequestContext.self)
        AdminRoutes(
            token: environment["PULLSYNC_ADMIN_TOKEN"].flatMap { $0.isEmpty ? nil : $0 },
            graph: store.graph,
            dispatcher: dispatcher,
            reloader: reloader,
            metrics: metrics
        ).register(on: router)

        let pages = router.group()
        if configuration.pullSyncEnabled {
            pages.add(
                middleware: PullSyncMiddleware(
                    dispatcher: dispatcher,
                    issuer: EdgeCookieIssuer(secret: secret),
                    clientIP: configuration.clientIPHeader.map { .header($0) } ?? .socketPeer
                )
            )
        }
        // The origin client fails fast (no connection retries) so a down origin is a quick 502.
        var originConfiguration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(2), read: .seconds(10)),
            decompression: .disabled
        )
        originConfiguration.connectionPool.retryConnectionEstablishment = false
        let originClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: originConfiguration)
        let responder = PageResponder(origin: configuration.origin, client: originClient)
        let methods: [HTTPRequest.Method] =
            configuration.origin == nil ? [.get, .head] : [.get, .head, .post, .put, .patch, .delete, .options]
        for method in methods {
            pages.on("/", method: method) { request, context in try await responder.respond(request, context: context) }
            pages.on("**", method: method) { request, context in try await responder.respond(request, context: context)
            }
        }

        let application = Application(
            router: router,
            // Idle connections close, so a stalled client can't hold shutdown (or a socket) open.
            server: .http1(configuration: .init(idleTimeout: .seconds(30))),
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.host, port: configuration.port),
                serverName: "pullsync"
            ),
            // The store first: a group shuts down in reverse order, so it outlives the last writes.
            services: store.services + [
                OriginClientService(client: originClient), transport, PullSyncService(dispatcher: dispatcher),
                PartnerReloadSignalService(reloader: reloader),
            ],
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
            logger: logger
        )
        return EdgeService(
            application: application,
            dispatcher: dispatcher,
            graph: store.graph,
            loaded: loaded,
            metrics: metrics,
            reloader: reloader
        )
    }
}

/// Shuts the origin client down when the service group shuts down (after the server stopped).
struct OriginClientService: Service {
    let client: HTTPClient

    func run() async throws {
        try? await gracefulShutdown()
        try await client.shutdown()
    }
}
