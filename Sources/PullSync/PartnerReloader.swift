package import PartnerAdapterKit
package import CoreMetrics
package import Logging
package import PullSyncKernel
import ServiceLifecycle
import Synchronization
import UnixSignals

/// Reloads the partner manifests into a running dispatcher, all or nothing: on `SIGHUP`
/// (when ``PullSyncService/Configuration/reloadsOnHangup`` is on) and `POST /_pullsync/reload`.
///
/// A reload whose manifests have any problem keeps the running partners, logs every problem at
/// error level as `path:line:column: error: message`, and shows the failure in metrics
/// (`pullsync_reload_failures_total`, `pullsync_reload_last_succeeded` 0) and in health. An
/// unresolved secret is not a failure: as at start, that partner is disabled and the others run.
/// What carries over from the running partners is described at `PullKernel.reloaded(with:)`.
public final class PartnerReloader: Sendable {
    /// What one reload came to.
    public struct Outcome: Sendable {
        /// Whether the new partners are in place.
        public var succeeded: Bool
        /// Every problem, `path:line:column: error: message` (never a secret value).
        public var problems: [String]
        /// The enabled partners now running (the old ones when the reload failed).
        public var enabled: [String]
    }

    /// The last reloads, for health.
    package struct Status: Sendable {
        package var reloads: Int
        package var failures: Int
        /// Unix seconds of the last attempt and the last success, when there was one.
        package var lastAttempt: Int64?
        package var lastSuccess: Int64?
        package var lastSucceeded: Bool?
        /// The last failed reload's problems (empty after a success).
        package var lastProblems: [String]
        /// The running partners' load problems (unresolved secrets, or the start's manifest errors).
        package var runningProblems: Int
    }

    private struct State {
        var status: Status
    }

    private let paths: [String]
    private let secrets: any SecretResolver
    private let adapters: AdapterRegistry
    private let dispatcher: PullDispatcher
    private let logger: Logger
    private let clock: any WallClock
    private let state: Mutex<State>
    private let succeeded: Counter
    private let failed: Counter
    private let lastSucceeded: Gauge
    private let lastSuccessTime: Gauge

    /// - Parameters:
    ///   - paths: the manifest folders and files to load again on each reload.
    ///   - secrets: resolves the manifests' secret references.
    ///   - adapters: the compiled adapters manifests may name.
    ///   - dispatcher: the dispatcher whose partners a successful reload swaps.
    ///   - initial: the partners the dispatcher started with.
    ///   - metricsFactory: where the reload metrics go.
    ///   - clock: the time of each reload, for health.
    ///   - logger: where reload problems are logged.
    package init(
        paths: [String],
        secrets: any SecretResolver,
        adapters: AdapterRegistry = .builtIn,
        dispatcher: PullDispatcher,
        initial: LoadedPartners,
        metricsFactory: any MetricsFactory,
        clock: any WallClock = SystemWallClock(),
        logger: Logger
    ) {
        self.paths = paths
        self.secrets = secrets
        self.adapters = adapters
        self.dispatcher = dispatcher
        self.logger = logger
        self.clock = clock
        self.state = Mutex(
            State(
                status: Status(reloads: 0, failures: 0, lastProblems: [], runningProblems: initial.diagnostics.count)
            )
        )
        succeeded = Counter(label: "pullsync_reloads_total", factory: metricsFactory)
        failed = Counter(label: "pullsync_reload_failures_total", factory: metricsFactory)
        lastSucceeded = Gauge(label: "pullsync_reload_last_succeeded", factory: metricsFactory)
        lastSuccessTime = Gauge(label: "pullsync_reload_last_success_timestamp_seconds", factory: metricsFactory)
        lastSucceeded.record(1)
    }

    /// Loads the manifests again and, if none has a problem, puts them in place. One reload at a
    /// time; `trigger` names what asked for it in the log.
    @discardableResult
    public func reload(trigger: String) -> Outcome {
        state.withLock { state in
            let loaded = PartnerLoader.load(paths: paths, secrets: secrets, adapters: adapters)
            let now = clock.now().secondsSinceEpoch
            state.status.lastAttempt = now
            guard loaded.manifestErrors.isEmpty else {
                for problem in loaded.manifestErrors {
                    logger.error("partner reload: \(problem.description)", metadata: ["trigger": "\(trigger)"])
                }
                logger.error(
                    "partner reload failed; the running partners stay",
                    metadata: ["trigger": "\(trigger)", "problems": "\(loaded.manifestErrors.count)"]
                )
                state.status.failures += 1
                state.status.lastSucceeded = false
                state.status.lastProblems = loaded.manifestErrors.map(\.description)
                failed.increment()
                lastSucceeded.record(0)
                let running = dispatcher.kernel.registry
                return Outcome(
                    succeeded: false,
                    problems: state.status.lastProblems,
                    enabled: running.enabledIndices.map { running.partners[$0].id }
                )
            }
            let kernel = dispatcher.reload(loaded.registry)
            // Unresolved secrets disable their partner, as at start.
            for problem in loaded.diagnostics { logger.warning("partner reload: \(problem.description)") }
            let enabled = kernel.registry.enabledIndices.map { kernel.registry.partners[$0].id }
            logger.notice(
                "partners reloaded",
                metadata: [
                    "trigger": "\(trigger)", "enabled": "\(enabled.joined(separator: ","))",
                    "disabled": "\(loaded.disabled.count)",
                ]
            )
            state.status.reloads += 1
            state.status.lastSuccess = now
            state.status.lastSucceeded = true
            state.status.lastProblems = []
            state.status.runningProblems = loaded.diagnostics.count
            succeeded.increment()
            lastSucceeded.record(1)
            lastSuccessTime.record(Double(now))
            return Outcome(succeeded: true, problems: loaded.diagnostics.map(\.description), enabled: enabled)
        }
    }

    /// The reloads so far.
    package var status: Status { state.withLock { $0.status } }
}

/// Reloads the partners on every `SIGHUP` until the service group shuts down.
package struct PartnerReloadSignalService: Service {
    let reloader: PartnerReloader

    package init(reloader: PartnerReloader) {
        self.reloader = reloader
    }

    package func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        for await _ in hangups.cancelOnGracefulShutdown() {
            reloader.reload(trigger: "SIGHUP")
        }
    }
}
