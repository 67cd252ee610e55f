public import CoreMetrics
public import Logging
public import PullSyncKernel
public import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Makes pull sync give way to pages while the CPU is saturated: the dispatcher takes no
/// request while, over the last `interval`, threads waited for a CPU more than `limit` of the
/// time (and, once it gives way, until that share falls under three quarters of `limit`). That
/// share is Linux's pressure stall information ("some": time in which at least one
/// runnable thread, a page's or anyone's, waited for a CPU), read from the cgroup's
/// `cpu.pressure` in a container, else from `/proc/pressure/cpu`. Thread priorities can't do
/// this: pull sync's work runs on the threads pages run on (the cooperative pool, the event
/// loops, the store's), so what is bounded here is how much of it starts.
///
/// Where pressure isn't available (not Linux, or a kernel without PSI) it never gives way, and
/// says so once in the log.
///
/// Metrics: `pullsync_gave_way_total` (requests the dispatcher waited before taking) and
/// `pullsync_cpu_pressure` (the share measured over the last interval, 0 to 1).
public final class CPUPressureGovernor: LoadGovernor, Service {
    /// When to give way, and how the pressure is read.
    public struct Configuration: Sendable, Hashable {
        /// The share of time (0 to 1) in which threads waited for a CPU above which pull sync
        /// gives way. Default 0.3.
        public var limit: Double
        /// How often the pressure is read; each reading covers the time since the last.
        /// Default 100 ms.
        public var interval: Duration
        /// The longest the dispatcher waits for one request, so that pull sync still moves
        /// (a request at a time) under pressure that never ends. Default 250 ms.
        public var longestWait: Duration
        /// The file read; `nil` (the default) for `/sys/fs/cgroup/cpu.pressure` where there is
        /// one (a container's cgroup), else `/proc/pressure/cpu`.
        public var path: String?

        /// Creates a configuration; every default is the one documented on its property.
        public init(
            limit: Double = 0.3,
            interval: Duration = .milliseconds(100),
            longestWait: Duration = .milliseconds(250),
            path: String? = nil
        ) {
            self.limit = limit
            self.interval = interval
            self.longestWait = longestWait
            self.path = path
        }
    }

    /// The share of the limit under which a governor that is giving way lets go.
    static let release = 0.75

    private struct Reading {
        var stalled: UInt64
        var at: ContinuousClock.Instant
    }

    private let configuration: Configuration
    private let busy = Atomic(false)
    private let last = Mutex<Reading?>(nil)
    private let gaveWay: Counter
    private let pressure: Gauge
    private let logger: Logger

    /// - Parameters:
    ///   - configuration: the limit, the interval and the file.
    ///   - metricsFactory: where `pullsync_gave_way_total` and `pullsync_cpu_pressure` go.
    ///   - logger: where an unreadable pressure file is reported.
    public init(
        configuration: Configuration = Configuration(),
        metricsFactory: any MetricsFactory = MetricsSystem.factory,
        logger: Logger
    ) {
        self.configuration = configuration
        gaveWay = Counter(label: "pullsync_gave_way_total", factory: metricsFactory)
        pressure = Gauge(label: "pullsync_cpu_pressure", factory: metricsFactory)
        self.logger = logger
    }

    /// Whether pull sync gives way now (the last interval's pressure was over the limit).
    public var isGivingWay: Bool { busy.load(ordering: .relaxed) }

    /// Reads the pressure every `interval` until graceful shutdown.
    public func run() async throws {
        let path = configuration.path ?? Self.defaultPath()
        guard observe(Self.readStalled(path)) else {
            logger.notice(
                "CPU pressure can't be read; pull sync won't give way to pages under load",
                metadata: ["path": "\(path)"]
            )
            try? await gracefulShutdown()
            return
        }
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: self.configuration.interval) }
            } catch {
                break
            }
            observe(Self.readStalled(path))
        }
        busy.store(false, ordering: .relaxed)
    }

    public func waitForRoom() async -> Bool {
        guard isGivingWay else { return false }
        gaveWay.increment()
        let deadline = ContinuousClock.now + configuration.longestWait
        let step = min(configuration.interval, .milliseconds(10))
        while isGivingWay, ContinuousClock.now < deadline {
            do { try await Task.sleep(for: step) } catch { break }
        }
        return true
    }

    /// Takes in one reading of the file: the total time stalled, in microseconds, `nil` when it
    /// couldn't be read (then pull sync doesn't give way). Whether there was a reading.
    @discardableResult
    package func observe(_ stalled: UInt64?, at now: ContinuousClock.Instant = .now) -> Bool {
        guard let stalled else {
            busy.store(false, ordering: .relaxed)
            last.withLock { $0 = nil }
            return false
        }
        let share: Double? = last.withLock { last in
            defer { last = Reading(stalled: stalled, at: now) }
            guard let last, now > last.at, stalled >= last.stalled else { return nil }
            let elapsed = now - last.at
            let microseconds = Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12
            return Double(stalled - last.stalled) / microseconds
        }
        if let share {
            pressure.record(share)
            // Once giving way, it keeps giving way until the share falls under three quarters of
            // the limit: let go as soon as it dipped under the limit, the queue that filled
            // meanwhile was decided in one burst (up to an interval long) and pushed the share
            // straight back over it.
            let threshold = busy.load(ordering: .relaxed) ? configuration.limit * Self.release : configuration.limit
            busy.store(share > threshold, ordering: .relaxed)
        }
        return true
    }

    /// The "some" line's `total=` (microseconds stalled since boot) in a pressure file's text.
    package static func stalledMicroseconds(in text: String) -> UInt64? {
        for line in text.split(separator: "\n") where line.hasPrefix("some ") {
            for field in line.split(separator: " ") where field.hasPrefix("total=") {
                return UInt64(field.dropFirst("total=".count))
            }
        }
        return nil
    }

    /// A container's own file (cgroup v2, its namespace's root) where there is one, else the machine's.
    static func defaultPath() -> String {
        let cgroup = "/sys/fs/cgroup/cpu.pressure"
        return access(cgroup, R_OK) == 0 ? cgroup : "/proc/pressure/cpu"
    }

    /// The stalled time in `path`; `nil` when it can't be read or holds no "some" total.
    package static func readStalled(_ path: String) -> UInt64? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        // The file is two lines of under 100 bytes each.
        var buffer = [UInt8](repeating: 0, count: 512)
        let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        return stalledMicroseconds(in: String(decoding: buffer[..<count], as: UTF8.self))
    }
}
