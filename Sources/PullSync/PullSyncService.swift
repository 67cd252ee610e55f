public import CoreMetrics
import Foundation
public import Logging
public import PartnerAdapterKit
public import PullSyncAdapters
import PullSyncConsent
public import PullSyncKernel
public import PullSyncSQLite
public import PullSyncStorage
public import ServiceLifecycle

/// Pull sync for an edge service, in one value: the partners from a folder of manifests, the
/// store a URL names, the HTTP transport, the dispatcher, hot reload and metrics.
///
/// Create it from a ``Configuration``, add it to your `ServiceGroup` before your HTTP server, and
/// hand it each organic request after the response (the Hummingbird middleware in
/// `PullSyncHummingbird` does that):
///
/// ```swift
/// let pullSync = try await PullSyncService(configuration: .init(store: "sqlite:edge.db"), logger: logger)
/// let group = ServiceGroup(services: [pullSync, app], gracefulShutdownSignals: [.sigterm], logger: logger)
/// ```
///
/// It starts and stops its parts in order: the store first and last, then the transport, then
/// the dispatcher, which on graceful shutdown stops taking requests and gives the calls in
/// flight their grace period; their UIDs are written before the transport and the store close.
public final class PullSyncService: Service, Sendable {
    /// Everything it is built from. Every value has a default.
    public struct Configuration: Sendable {
        /// The folder of partner manifests. Default `partners.d`.
        public var partnersDirectory: String
        /// The store URL: `sqlite:PATH` (the default `sqlite:pullsync.db`), `memory:`, or another
        /// that one of ``storeDrivers`` opens (`postgres://…` with `StoreDriver.postgres`).
        public var store: String
        /// What can open ``store``. Default `memory:` and `sqlite:`; add `.postgres` from
        /// `PullSyncPostgres` for a store shared by several nodes.
        public var storeDrivers: [StoreDriver]
        /// The kernel's settings: routes, fan-out, caps, grace period.
        public var pullSync: PullSyncConfiguration
        /// Partner TLS and address checks. Its `allowLoopback` follows ``pullSync``'s, and its
        /// `connectionsPerHost` is ``pullSync``'s `maxInFlightCalls`, so that every call the
        /// kernel admits has a connection.
        public var transport: HTTPPullTransport.Configuration
        /// The compiled adapters manifests may name. Default the built-in ones.
        public var adapters: AdapterRegistry
        /// Reload the manifests on `SIGHUP`. Default `true`.
        public var reloadsOnHangup: Bool
        /// How long the store keeps ECs and UIDs (the UIDs' maximum age is ``pullSync``'s
        /// `maxUIDAge`). Default: ECs idle for 13 months and UIDs older than 90 days are deleted.
        public var retention: Retention
        /// How partners' opt-out endpoints are told of withdrawals and revocations. Default on:
        /// every second, retried with backoff for up to 7 days.
        public var optOuts: OptOutDelivery
        /// When pull sync gives way to pages: while the CPU's pressure is over a limit, the
        /// dispatcher takes no request (``CPUPressureGovernor``). Default on, at 30 %; `nil`
        /// never gives way.
        public var cpuPressure: CPUPressureGovernor.Configuration?
        /// Whether the queue is read and requests are decided and called on threads below the
        /// pages' priority (``BackgroundExecutor``), and the transport's event loop runs below
        /// the pages too, so that a page's task never waits behind pull sync's in Swift's thread
        /// pool and the operating system runs a page's thread first. Default `true`; `false`
        /// runs them on Swift's global executor beside the host's own tasks.
        public var runsInBackground: Bool

        /// Creates a configuration; every default is the one documented on its property.
        public init(
            partnersDirectory: String = "partners.d",
            store: String = StoreURL.defaultURL,
            storeDrivers: [StoreDriver] = [.memory, .sqlite],
            pullSync: PullSyncConfiguration = PullSyncConfiguration(),
            transport: HTTPPullTransport.Configuration = HTTPPullTransport.Configuration(),
            adapters: AdapterRegistry = .builtIn,
            reloadsOnHangup: Bool = true,
            retention: Retention = Retention(),
            optOuts: OptOutDelivery = OptOutDelivery(),
            cpuPressure: CPUPressureGovernor.Configuration? = CPUPressureGovernor.Configuration(),
            runsInBackground: Bool = true
        ) {
            self.runsInBackground = runsInBackground
            self.optOuts = optOuts
            self.cpuPressure = cpuPressure
            self.partnersDirectory = partnersDirectory
            self.store = store
            self.storeDrivers = storeDrivers
            self.pullSync = pullSync
            self.transport = transport
            self.adapters = adapters
            self.reloadsOnHangup = reloadsOnHangup
            self.retention = retention
        }
    }

    /// Why it can't start: a store that doesn't open, a bad `PULLSYNC_EC_SECRET`.
    public struct StartError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Takes the organic requests.
    package let dispatcher: PullDispatcher
    /// Where UIDs, rate-limit windows and the EC secret are kept.
    package let store: any PullSyncStore
    /// Reloads the partners (`SIGHUP`, or ``reload()``).
    package let reloader: PartnerReloader
    /// The partners it started with (``reloader`` has the reloads since).
    package let loaded: LoadedPartners
    /// The secret ECs are issued with: `PULLSYNC_EC_SECRET`, else the store's.
    package let ecSecret: [UInt8]
    private let transport: HTTPPullTransport
    private let reloadsOnHangup: Bool
    /// Deletes what is too old; `nil` when retention is off.
    package let retention: RetentionService?
    /// Delivers the opt-out outbox (unless off), and tries again withdrawals the store refused.
    package let optOuts: OptOutService
    /// Gives way to pages under CPU pressure; `nil` when off.
    package let governor: CPUPressureGovernor?
    private let logger: Logger

    /// Loads the partners (a broken manifest or an unresolved secret disables that partner and is
    /// logged; the others run), opens the store and reads the EC secret.
    ///
    /// - Parameters:
    ///   - configuration: the partners folder, the store, the kernel's and the transport's settings.
    ///   - environment: where `PULLSYNC_EC_SECRET` is read (never logged); default the process's.
    ///   - secrets: resolves manifests' token references; default the environment and files.
    ///   - metricsFactory: where the kernel's and the reloader's metrics go.
    ///   - logger: where the service logs (manifest problems, store and partner trouble).
    public convenience init(
        configuration: Configuration = Configuration(),
        environment: [String: String]? = nil,
        secrets: (any SecretResolver)? = nil,
        metricsFactory: any MetricsFactory = MetricsSystem.factory,
        logger: Logger
    ) async throws(StartError) {
        try await self.init(
            configuration: configuration,
            environment: environment ?? ProcessInfo.processInfo.environment,
            secrets: secrets,
            metricsFactory: metricsFactory,
            wrapTransport: nil,
            logger: logger
        )
    }

    /// - Parameter wrapTransport: wraps the HTTP transport (the demo redirects partner ports).
    package init(
        configuration: Configuration,
        environment: [String: String],
        secrets: (any SecretResolver)?,
        metricsFactory: any MetricsFactory,
        wrapTransport: (@Sendable (any PullTransport) -> any PullTransport)?,
        logger: Logger
    ) async throws(StartError) {
        let secrets = secrets ?? EnvironmentSecretResolver(environment: environment)
        let loaded = PartnerLoader.load(
            paths: [configuration.partnersDirectory],
            secrets: secrets,
            adapters: configuration.adapters
        )
        for diagnostic in loaded.diagnostics { logger.error("\(diagnostic.description)") }
        let store: any PullSyncStore
        do {
            store = try await StoreURL.open(configuration.store, drivers: configuration.storeDrivers, logger: logger)
        } catch {
            throw StartError(description: error.description)
        }
        if let configured = environment["PULLSYNC_EC_SECRET"] {
            guard configured.utf8.count >= 16 else {
                throw StartError(description: "PULLSYNC_EC_SECRET must be at least 16 bytes")
            }
            ecSecret = Array(configured.utf8)
        } else {
            do {
                ecSecret = try await store.ecSecret()
            } catch {
                throw StartError(description: "cannot read the EC secret from the store: \(error)")
            }
        }
        var transportConfiguration = configuration.transport
        transportConfiguration.allowLoopback = configuration.pullSync.allowLoopback
        // Derived, not a second setting: a call the kernel admits never waits in the pool for a
        // connection (where its deadline would run out for a partner that is only slow, opening its
        // circuit). The kernel keeps each partner within its in-flight cap and all of them within
        // `maxInFlightCalls`, so that many connections per host are always enough, even for partners
        // sharing a host; the pool opens only as many as are in use.
        transportConfiguration.connectionsPerHost = configuration.pullSync.maxInFlightCalls
        // Partner TLS and I/O on a loop of their own: they never hold up the loops serving pages.
        transport = HTTPPullTransport(
            configuration: transportConfiguration,
            dedicatedThreads: 1,
            belowPages: configuration.runsInBackground,
            logger: logger
        )
        let kernel = PullKernel(
            registry: loaded.registry,
            configuration: configuration.pullSync,
            graph: store,
            rateLimiter: store,
            transport: wrapTransport?(transport) ?? transport,
            consent: IABConsentRules(),
            clock: SystemWallClock(),
            metricsFactory: metricsFactory,
            logger: logger
        )
        governor = configuration.cpuPressure.map {
            CPUPressureGovernor(configuration: $0, metricsFactory: metricsFactory, logger: logger)
        }
        dispatcher = PullDispatcher(
            kernel: kernel,
            governor: governor,
            executor: configuration.runsInBackground ? BackgroundExecutor.shared : nil
        )
        reloader = PartnerReloader(
            paths: [configuration.partnersDirectory],
            secrets: secrets,
            adapters: configuration.adapters,
            dispatcher: dispatcher,
            initial: loaded,
            metricsFactory: metricsFactory,
            logger: logger
        )
        self.store = store
        self.loaded = loaded
        self.reloadsOnHangup = configuration.reloadsOnHangup
        retention =
            configuration.retention.enabled
            ? RetentionService(
                store: store,
                retention: configuration.retention,
                maxUIDAge: configuration.pullSync.maxUIDAge,
                metricsFactory: metricsFactory,
                logger: logger
            ) : nil
        let dispatcher = self.dispatcher
        optOuts = OptOutService(
            store: store,
            kernel: { dispatcher.kernel },
            delivery: configuration.optOuts,
            metricsFactory: metricsFactory,
            logger: logger
        )
        self.logger = logger
    }

    /// Runs the store, the transport, the governor and the dispatcher (and the `SIGHUP` reloader)
    /// until the group shuts down, then stops them in reverse order.
    public func run() async throws {
        var services: [any Service] = [store, transport]
        if let governor { services.append(governor) }
        services.append(DispatcherService(dispatcher: dispatcher))
        if reloadsOnHangup { services.append(PartnerReloadSignalService(reloader: reloader)) }
        if let retention { services.append(retention) }
        // Last: the first to stop, so its calls end before the transport and the store close.
        services.append(optOuts)
        // A group of its own, so the order is ours; it follows this service's graceful shutdown.
        let group = ServiceGroup(services: services, logger: logger)
        try await group.run()
    }

    // MARK: Requests and admin operations

    /// Hands one organic request over, after its response: never waits, never fails the page.
    @discardableResult
    public func submit(_ request: OrganicRequest) -> SubmitResult {
        dispatcher.submit(request)
    }

    /// What the store holds for the EC `ecID`; `nil` when the EC is malformed or unknown.
    public func ids(ecID: String) async throws -> ECRecord? {
        guard let edgeCookie = dispatcher.kernel.configuration.edgeCookieFormat.parse(ecID) else { return nil }
        return try await store.record(ecHash: edgeCookie.hashString)
    }

    /// The OpenRTB 2.6 EIDs a bid request for the EC `ecID` may carry under a request's consent
    /// (see `PullKernel.eids(for:consent:strings:)` for the rules): one store read at most, none
    /// when this node's fresh-EC memo holds the EC's UIDs. `nil` when the EC is malformed or
    /// unknown, also when the consent refuses every partner (then the read only checks the EC).
    public func eids(
        ecID: String,
        consent: ConsentDecision = .granted,
        strings: ConsentStrings = ConsentStrings()
    ) async throws -> [EID]? {
        guard let edgeCookie = dispatcher.kernel.configuration.edgeCookieFormat.parse(ecID) else { return nil }
        switch try await dispatcher.kernel.lookUpEIDs(for: edgeCookie, consent: consent, strings: strings) {
        case .eids(let eids): return eids
        case .unknownEC: return nil
        case .refused: return try await store.record(ecHash: edgeCookie.hashString) == nil ? nil : []
        }
    }

    /// Withdraws the EC `ecID`'s consent: its UIDs are forgotten, calls in flight for it store
    /// nothing, and it is never pulled for again. `false` when the EC is malformed or unknown.
    public func withdraw(ecID: String) async throws -> Bool {
        guard let edgeCookie = dispatcher.kernel.configuration.edgeCookieFormat.parse(ecID) else { return false }
        return try await dispatcher.kernel.withdraw(edgeCookie)
    }

    /// The opt-outs not delivered yet (in the store's outbox; `nil` when the store can't be
    /// read), and the withdrawals this node holds because the store refused them.
    public func pendingOptOuts() async -> (outbox: Int?, withdrawals: Int) {
        (try? await store.pendingOptOuts(), dispatcher.kernel.pendingWithdrawals.count)
    }

    /// Loads the manifests again, all or nothing (see ``PartnerReloader``).
    @discardableResult
    public func reload() -> PartnerReloader.Outcome {
        reloader.reload(trigger: "api")
    }

    /// `ok`, or `degraded` when a partner is disabled by a problem (an unresolved secret, a
    /// manifest error) or the last reload failed.
    public var status: Status {
        let registry = dispatcher.kernel.registry
        let reload = reloader.status
        let broken = registry.partners.contains { $0.disabledReason != nil }
        return broken || reload.runningProblems > 0 || reload.lastSucceeded == false ? .degraded : .ok
    }

    /// The service's health in one word.
    public enum Status: String, Sendable, Hashable {
        case ok
        case degraded
    }
}

/// Runs a ``PullDispatcher`` under swift-service-lifecycle: graceful shutdown stops it taking
/// work and gives calls in flight the configured grace period; cancellation stops it at once.
package struct DispatcherService: Service {
    package let dispatcher: PullDispatcher

    package init(dispatcher: PullDispatcher) {
        self.dispatcher = dispatcher
    }

    package func run() async throws {
        await withGracefulShutdownHandler {
            await dispatcher.run()
        } onGracefulShutdown: {
            dispatcher.beginShutdown()
        }
    }
}
