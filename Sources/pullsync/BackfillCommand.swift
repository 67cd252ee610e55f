import ArgumentParser
import Foundation
import Logging
import PartnerAdapterKit
import PullSync
import PullSyncEdge
import PullSyncStorage
import ServiceLifecycle
import Synchronization

struct BackfillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backfill",
        abstract: "Fill one partner's UIDs for the ECs already in the store, at the partner's pace.",
        discussion: """
            Visits the known, not withdrawn ECs whose UID for the partner is missing or stale, and \
            calls the partner through the same rules as organic pull sync. At most one call per EC \
            within the partner's rate-limit window, whatever happened before. Ctrl-C (SIGINT) or \
            SIGTERM stops starting calls, lets those in flight finish, and saves a checkpoint in the \
            store: the same command resumes there. Exits 0 when complete or when --limit was \
            reached, 130 when interrupted, 1 on an error.
            """
    )

    @Option(help: "The partner manifests folder.")
    var partners: String = "partners.d"

    @Option(help: "The partner to fill (its manifest id).")
    var partner: String

    @Option(help: "The store URL: sqlite:PATH, postgres://USER@HOST/DB.")
    var store: String = StoreURL.defaultURL

    @Option(help: "Calls per second at most: N, N/s, N/m or N/h. Default: the partner's budget, else 10/s.")
    var rate: String?

    @Option(help: "Handle at most N ECs in this run (the checkpoint keeps the rest).")
    var limit: Int?

    @Flag(name: .customLong("dry-run"), help: "Count the candidates and show a sample of decisions; call nothing.")
    var dryRun = false

    @Option(help: "Calls in flight at once. Default: enough for the rate if every call took the whole timeout.")
    var concurrency: Int?

    @Option(
        name: .customLong("consent-max-age-days"),
        help: "Call a TCF partner only for ECs whose consent signals were seen within N days (default 395, 13 months)."
    )
    var consentMaxAgeDays: Int = 395

    @Option(name: .customLong("progress-interval"), help: "Seconds between progress lines when not on a terminal.")
    var progressInterval: Double = 10

    @Option(name: .customLong("tls-ca-file"), help: "A PEM file of extra trust roots for partner TLS.")
    var tlsCAFile: String?

    @Flag(name: .customLong("allow-loopback"), help: "Allow loopback partner URLs, over https or http (development).")
    var allowLoopback = false

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "error"

    func validate() throws {
        if let rate, Self.parseRate(rate) == nil {
            throw ValidationError(
                "--rate '\(rate)' must be a positive number of calls per second: 50, 50/s, 600/m or 3600/h"
            )
        }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        if let concurrency, !(1...4096).contains(concurrency) {
            throw ValidationError("--concurrency must be 1 to 4096")
        }
        guard progressInterval > 0 else {
            throw ValidationError("--progress-interval must be a positive number of seconds")
        }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError(
                "--log-level '\(logLevel)' must be one of trace, debug, info, notice, warning, error, critical"
            )
        }
        if let tlsCAFile, !FileManager.default.isReadableFile(atPath: tlsCAFile) {
            throw ValidationError("--tls-ca-file '\(tlsCAFile)' cannot be read")
        }
        guard (1...36_500).contains(consentMaxAgeDays) else {
            throw ValidationError("--consent-max-age-days must be 1 to 36500")
        }
    }

    /// Calls per second from `N`, `N/s`, `N/m` (or `/min`) and `N/h`.
    static func parseRate(_ text: String) -> Double? {
        let parts = text.split(separator: "/", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        guard let count = Double(parts[0]), count > 0, count.isFinite else { return nil }
        let per: Double
        switch parts.count == 2 ? parts[1] : "s" {
        case "s", "sec", "second": per = 1
        case "m", "min", "minute": per = 60
        case "h", "hour": per = 3600
        default: return nil
        }
        return count / per
    }

    func run() async throws {
        var logger = Logger(label: "pullsync")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .error

        let loaded = PartnerLoader.load(paths: [partners], secrets: EnvironmentSecretResolver())
        for diagnostic in loaded.diagnostics where diagnostic.message.contains("'\(partner)'") {
            printError(diagnostic.description)
        }
        guard let selected = loaded.registry[id: partner] else {
            for diagnostic in loaded.diagnostics { printError(diagnostic.description) }
            let known = loaded.registry.partners.map(\.id).joined(separator: ", ")
            throw ValidationError(
                "no valid partner '\(partner)' in \(partners) (valid: \(known.isEmpty ? "none" : known))"
            )
        }
        let opened: any PullSyncStore
        do {
            opened = try await StoreURL.open(store, drivers: [.memory, .sqlite, .postgres], logger: logger)
        } catch {
            printError("error: \(error.description)")
            throw ExitCode(1)
        }
        let transport = HTTPPullTransport(
            configuration: HTTPPullTransport.Configuration(
                allowLoopback: allowLoopback,
                additionalTrustRootFiles: tlsCAFile.map { [$0] } ?? [],
                // Backfill's per-partner cap is its concurrency: a connection for each call.
                connectionsPerHost: max(concurrency ?? Backfill.maxDerivedConcurrency, 1)
            ),
            logger: logger
        )
        let options = BackfillOptions(
            rate: rate.flatMap(Self.parseRate) ?? selected.policy.budgetPerSecond ?? 10,
            limit: limit,
            concurrency: concurrency,
            consentMaxAge: .seconds(consentMaxAgeDays * 86_400)
        )
        let backfill: Backfill
        do {
            backfill = try Backfill(
                partnerID: partner,
                registry: loaded.registry,
                store: opened,
                transport: transport,
                configuration: PullSyncConfiguration(allowLoopback: allowLoopback),
                options: options,
                logger: logger
            )
        } catch {
            printError("error: \(error.description)")
            await transport.shutdown()
            throw ExitCode(1)
        }

        let job = BackfillJob(
            backfill: backfill,
            dryRun: dryRun,
            reporter: ProgressReporter(
                partnerID: partner,
                style: isatty(STDERR_FILENO) == 1 ? .bar : .lines,
                interval: .milliseconds(Int64(progressInterval * 1000))
            )
        )
        // The store first, the job last: a group shuts down in reverse order, so the job stops
        // (and saves its checkpoint) while the store and the transport still run.
        var group = ServiceGroupConfiguration(
            services: [
                .init(service: opened),
                .init(service: transport),
                .init(service: job, successTerminationBehavior: .gracefullyShutdownGroup),
            ],
            gracefulShutdownSignals: [.sigint, .sigterm],
            logger: logger
        )
        group.maximumGracefulShutdownDuration = selected.policy.timeout + .seconds(15)
        do {
            try await ServiceGroup(configuration: group).run()
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        switch job.result {
        case .summary(let summary)?:
            print(BackfillReport.summary(summary, partner: selected, options: backfill.options))
            if summary.ending == .interrupted { throw ExitCode(130) }
        case .dryRun(let text)?:
            print(text)
        case .failed(let message)?:
            printError("error: \(message)")
            throw ExitCode(1)
        case nil:
            printError("error: the backfill did not run")
            throw ExitCode(1)
        }
    }
}

/// Runs the backfill (or the dry run) and its progress display as a service.
final class BackfillJob: Service, Sendable {
    enum Result: Sendable {
        case summary(BackfillSummary)
        case dryRun(String)
        case failed(String)
    }

    let backfill: Backfill
    let dryRun: Bool
    let reporter: ProgressReporter
    private let outcome = Mutex<Result?>(nil)

    init(backfill: Backfill, dryRun: Bool, reporter: ProgressReporter) {
        self.backfill = backfill
        self.dryRun = dryRun
        self.reporter = reporter
    }

    var result: Result? { outcome.withLock { $0 } }

    func run() async throws {
        let result: Result
        do {
            if dryRun {
                let planned = try await backfill.dryRun()
                result = .dryRun(BackfillReport.dryRun(planned, backfill: backfill))
            } else {
                let backfill = self.backfill
                let reporter = self.reporter
                result = .summary(
                    try await withThrowingTaskGroup(of: BackfillSummary?.self) { group in
                        group.addTask {
                            await reporter.show { backfill.progress }
                            return nil
                        }
                        let summary = try await backfill.run()
                        group.cancelAll()
                        while try await group.next() != nil {}
                        reporter.finish(summary.progress)
                        return summary
                    }
                )
            }
        } catch {
            result = .failed(String(describing: error))
        }
        outcome.withLock { $0 = result }
    }
}

/// Live progress on standard error: a bar redrawn in place on a terminal, plain periodic lines
/// otherwise.
struct ProgressReporter: Sendable {
    enum Style: Sendable { case bar, lines }

    let partnerID: String
    let style: Style
    let interval: Duration

    /// Shows `progress()` until cancelled.
    func show(_ progress: @Sendable () -> BackfillProgress?) async {
        let every = style == .bar ? .milliseconds(200) : interval
        while !Task.isCancelled {
            do { try await Task.sleep(for: every) } catch { return }
            guard let current = progress() else { continue }
            write(current)
        }
    }

    /// The last state, ending the bar's line.
    func finish(_ progress: BackfillProgress) {
        write(progress)
        if style == .bar { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    private func write(_ progress: BackfillProgress) {
        switch style {
        case .bar:
            FileHandle.standardError.write(Data("\r\u{1B}[2K\(BackfillReport.bar(progress))".utf8))
        case .lines:
            FileHandle.standardError.write(Data("backfill \(partnerID): \(BackfillReport.line(progress))\n".utf8))
        }
    }
}
