import AsyncHTTPClient
import Foundation
import HTTPTypes
public import Hummingbird
import HummingbirdCore
public import Logging
public import Prometheus
public import PullSync
import PullSyncStorage
public import PullSyncHummingbird
import PullSyncPostgres
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
    /// Pull sync: the dispatcher, the store, the partners and their reloads.
    public let pullSync: PullSyncService
    /// The metrics the admin API exposes.
    public let metrics: PrometheusCollectorRegistry

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
        let metrics = PrometheusCollectorRegistry()
        var transport = HTTPPullTransport.Configuration(
            allowLoopback: configuration.allowLoopback,
            additionalTrustRootFiles: configuration.tlsCAFile.map { [$0] } ?? []
        )
        if let hostResolver { transport.resolver = hostResolver }
        if let connectTimeout { transport.connectTimeout = connectTimeout }
        var kernel = configuration.pullSync
        kernel.allowLoopback = configuration.allowLoopback
        let pullSync: PullSyncService
        do {
            pullSync = try await PullSyncService(
                configuration: PullSyncService.Configuration(
                    partnersDirectory: configuration.partnersDirectory,
                    store: configuration.store,
                    storeDrivers: [.memory, .sqlite, .postgres],
                    pullSync: kernel,
                    transport: transport,
                    retention: configuration.retention,
                    cpuPressure: configuration.cpuPressure,
                    runsInBackground: configuration.pullSyncInBackground
                ),
                environment: environment,
                secrets: secrets,
                metricsFactory: PrometheusMetricsFactory(registry: metrics),
                wrapTransport: wrapTransport,
                logger: logger
            )
        } catch {
            throw StartError(description: error.description)
        }
        let router = Router(context: EdgeRequestContext.self)
        AdminRoutes(
            token: environment["PULLSYNC_ADMIN_TOKEN"].flatMap { $0.isEmpty ? nil : $0 },
            pullSync: pullSync,
            metrics: metrics
        ).register(on: router)

        let pages = router.group()
        if configuration.pullSyncEnabled {
            pages.add(
                middleware: PullSyncMiddleware(
                    pullSync,
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
        let responder = PageResponder(
            origin: configuration.origin,
            client: originClient,
            eidsHeader: configuration.origin == nil ? nil : configuration.eidsHeader
        )
        let methods: [HTTPRequest.Method] =
            configuration.origin == nil ? [.get, .head] : [.get, .head, .post, .put, .patch, .delete, .options]
        for method in methods {
            pages.on("/", method: method) { request, context in try await responder.respond(request, context: context) }
            pages.on("**", method: method) { request, context in try await responder.respond(request, context: context)
            }
        }

        let http1 = HTTP1Channel.Configuration(idleTimeout: .seconds(30))
        let application = Application(
            router: router,
            // Idle connections close, so a stalled client can't hold shutdown (or a socket) open.
            // With pull sync, its HTTP/1.1: the hand-over after each page, written in one piece.
            // Without, Hummingbird's own, so `--no-pull-sync` pays nothing of pull sync's.
            server: configuration.pullSyncEnabled ? .pullSyncHTTP1(configuration: http1) : .http1(configuration: http1),
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.host, port: configuration.port),
                serverName: "pullsync"
            ),
            // Pull sync first: a group shuts down in reverse order, so its grace period starts
            // once the server has stopped taking pages.
            services: [pullSync, OriginClientService(client: originClient)],
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
            logger: logger
        )
        return EdgeService(application: application, pullSync: pullSync, metrics: metrics)
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
