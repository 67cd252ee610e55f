import ArgumentParser
import Foundation
import Logging
import PartnerAdapterKit
import PullSync
import PullSyncStorage
import PullSyncEdge
import ServiceLifecycle

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the reference edge service: pages, pull sync after each response, the admin API.",
        discussion: """
            Environment: PULLSYNC_ADMIN_TOKEN enables the admin API under /_pullsync/ (bearer \
            token); PULLSYNC_EC_SECRET is the EC-issuing secret (else one kept in the store). \
            SIGTERM or SIGINT stops accepting, lets pulls in flight finish within the grace \
            period, and exits 0. SIGHUP reloads the partner manifests, all or nothing (a bad \
            manifest keeps the running partners and logs every problem with its position).
            """
    )

    @Option(help: "The partner manifests folder.")
    var partners: String = "partners.d"

    @Option(help: "Listen address, HOST:PORT.")
    var listen: String = "127.0.0.1:8080"

    @Option(help: "The store URL: sqlite:PATH (embedded, persistent), postgres://USER@HOST/DB or memory:.")
    var store: String = StoreURL.defaultURL

    @Option(help: "Proxy organic pages from this origin (http(s)://host[:port]); default a built-in page.")
    var origin: String?

    @Option(
        name: .customLong("eids-header"),
        help: "With --origin: send the request's consented OpenRTB EIDs to the origin in this header (base64url JSON)."
    )
    var eidsHeader: String?

    @Option(name: .customLong("eid-inserter"), help: "The host's domain, given as 'inserter' in the EIDs.")
    var eidInserter: String?

    @Option(name: .customLong("tls-ca-file"), help: "A PEM file of extra trust roots for partner TLS.")
    var tlsCAFile: String?

    @Flag(
        name: .customLong("allow-loopback"),
        help: "Allow loopback partner targets, over https or http (development)."
    )
    var allowLoopback = false

    @Option(name: .customLong("client-ip-header"), help: "Take the client IP from the first address of this header.")
    var clientIPHeader: String?

    @Option(
        name: .customLong("uid-max-age-days"),
        help: "Days a partner UID is kept (and offered as an EID) without being refreshed."
    )
    var uidMaxAgeDays: Int = 90

    @Option(name: .customLong("ec-idle-days"), help: "Days an EC not seen is kept, with its UIDs.")
    var ecIdleDays: Int = 395

    @Flag(name: .customLong("no-retention"), help: "Keep ECs and UIDs however old (no retention sweep).")
    var noRetention = false

    @Option(name: .customLong("grace-period"), help: "Seconds pulls in flight get to finish at shutdown.")
    var gracePeriod: Double = 5

    @Option(
        name: .customLong("cpu-pressure-limit"),
        help: "Give way to pages: take no pull-sync work while threads waited for a CPU more than this % of the time (0: never give way)."
    )
    var cpuPressureLimit: Double = 30

    @Flag(
        name: .customLong("background-priority"),
        inversion: .prefixedNo,
        help: "Run pull sync's work on threads below the pages' priority (nice 10 on Linux)."
    )
    var backgroundPriority = true

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    // For tests on a busy machine, where a loopback TLS handshake can outlast the default 1 s.
    @Option(name: .customLong("connect-timeout"), help: ArgumentHelp(visibility: .hidden))
    var connectTimeout: Double?

    @Flag(
        name: .customLong("no-pull-sync"),
        help: "Serve pages without pull sync (no EC handling, no partner calls): the benchmarks' baseline."
    )
    var noPullSync = false

    func validate() throws {
        guard Self.parseListen(listen) != nil else {
            throw ValidationError("--listen '\(listen)' must be HOST:PORT, e.g. 127.0.0.1:8080")
        }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError(
                "--log-level '\(logLevel)' must be one of trace, debug, info, notice, warning, error, critical"
            )
        }
        guard uidMaxAgeDays >= 1, ecIdleDays >= 1 else {
            throw ValidationError("--uid-max-age-days and --ec-idle-days must be at least 1")
        }
        guard cpuPressureLimit >= 0, cpuPressureLimit <= 100 else {
            throw ValidationError("--cpu-pressure-limit must be 0 to 100 (percent)")
        }
        guard gracePeriod >= 0, gracePeriod <= 300 else {
            throw ValidationError("--grace-period must be 0 to 300 seconds")
        }
        if let origin, !(origin.hasPrefix("http://") || origin.hasPrefix("https://")) {
            throw ValidationError("--origin '\(origin)' must start with http:// or https://")
        }
        if let eidsHeader {
            guard origin != nil else { throw ValidationError("--eids-header needs --origin (it is sent to the origin)") }
            guard AdapterParameter.isToken(eidsHeader) else {
                throw ValidationError("--eids-header '\(eidsHeader)' is not a valid header name")
            }
        }
    }

    static func parseListen(_ value: String) -> (host: String, port: Int)? {
        guard let colon = value.lastIndex(of: ":"), let port = Int(value[value.index(after: colon)...]),
            (0...65535).contains(port)
        else { return nil }
        var host = String(value[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }

    func run() async throws {
        let (host, port) = Self.parseListen(listen)!
        var logger = Logger(label: "pullsync")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let configuration = EdgeServiceConfiguration(
            partnersDirectory: partners,
            host: host,
            port: port,
            store: store,
            origin: origin.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 },
            eidsHeader: eidsHeader,
            tlsCAFile: tlsCAFile,
            allowLoopback: allowLoopback,
            clientIPHeader: clientIPHeader,
            pullSync: PullSyncConfiguration(
                shutdownGracePeriod: .milliseconds(Int64(gracePeriod * 1000)),
                eidInserter: eidInserter,
                maxUIDAge: .seconds(Int64(uidMaxAgeDays) * 86_400)
            ),
            pullSyncEnabled: !noPullSync,
            retention: Retention(ecIdleAge: .seconds(Int64(ecIdleDays) * 86_400), enabled: !noRetention),
            cpuPressure: cpuPressureLimit > 0 ? CPUPressureGovernor.Configuration(limit: cpuPressureLimit / 100) : nil,
            pullSyncInBackground: backgroundPriority
        )
        let service: EdgeService
        let startLogger = logger
        do {
            service = try await EdgeService.make(
                configuration: configuration,
                connectTimeout: connectTimeout.map { .milliseconds(Int64($0 * 1000)) },
                logger: logger
            ) { port in
                startLogger.notice("pullsync serve listening", metadata: ["address": "\(host):\(port)"])
            }
        } catch let error as EdgeService.StartError {
            FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
            throw ExitCode(1)
        }
        // Bounded: the grace period for pulls in flight, plus a little for the server to stop;
        // past that, whatever is left is cancelled and the process still exits 0.
        var groupConfiguration = ServiceGroupConfiguration(
            services: [service.application],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        groupConfiguration.maximumGracefulShutdownDuration = .milliseconds(Int64(gracePeriod * 1000) + 3000)
        groupConfiguration.maximumCancellationDuration = .seconds(2)
        do {
            try await ServiceGroup(configuration: groupConfiguration).run()
        } catch {
            logger.warning("shutdown did not finish in time; the rest was cancelled", metadata: ["error": "\(error)"])
        }
        let statistics = service.pullSync.dispatcher.statistics
        logger.notice(
            "pullsync serve stopped",
            metadata: [
                "processed": "\(statistics.processed)", "calls": "\(statistics.calls)",
                "stored": "\(statistics.stored)",
                "dropped_at_shutdown": "\(statistics.droppedAtShutdown)",
            ]
        )
    }
}
