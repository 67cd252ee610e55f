// Store round trips per organic request, and pulls per second, for each store in one run.
//
//   swift run -c release StoreBenchmark [--ecs N] [--partners P] [--concurrency C] [--postgres URL]
//
// The transport answers at once (no network), so the figures are the kernel and the store.
// PostgreSQL runs when --postgres or PULLSYNC_TEST_POSTGRES_URL names a server (use
// scripts/test-postgres to start one); the in-memory store is the baseline of the ratios.
import Foundation
import Logging
import PullSync
import PullSyncConsent
import PullSyncPostgres
import PullSyncSQLite
import PullSyncStorage
import PullSyncTesting
import Synchronization

struct Options {
    var ecs = 2_000
    var partners = 3
    var concurrency = 16
    var postgres = ProcessInfo.processInfo.environment["PULLSYNC_TEST_POSTGRES_URL"]

    init(_ arguments: [String]) {
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--ecs": ecs = Int(iterator.next() ?? "") ?? ecs
            case "--partners": partners = Int(iterator.next() ?? "") ?? partners
            case "--concurrency": concurrency = Int(iterator.next() ?? "") ?? concurrency
            case "--postgres": postgres = iterator.next()
            default:
                FileHandle.standardError.write(Data("unknown argument \(argument)\n".utf8))
                exit(2)
            }
        }
    }
}

/// Counts the steps of the store a kernel uses, by step: each is one round trip (one statement
/// on PostgreSQL, one transaction on SQLite).
final class StepCounter: Sendable {
    private let counts = Mutex<[InterceptingStore.Step: Int]>([:])

    /// `store`, counting every step it takes here.
    func counting(_ store: any PullSyncStore) throws -> InterceptingStore {
        guard let combined = store as? any CombinedStore else {
            throw CocoaError(.featureUnsupported, userInfo: [NSLocalizedDescriptionKey: "the store combines no steps"])
        }
        return InterceptingStore(combined) { step in self.counts.withLock { $0[step, default: 0] += 1 } }
    }

    var steps: [InterceptingStore.Step: Int] { counts.withLock { $0 } }
}

struct Phase {
    var requests: Int
    var pulls: Int
    var steps: [InterceptingStore.Step: Int]
    /// The store's own round trips in the phase (SQLite's transactions, PostgreSQL's statements),
    /// which UID writes queued together share.
    var roundTrips: Int?
    var elapsed: Duration

    var perRequest: Double { Double(steps.values.reduce(0, +)) / Double(requests) }
    /// Round trips of each step per request, the steps taken in the order of `Step`.
    var breakdown: String {
        let byStep = InterceptingStore.Step.allCases.compactMap { step in
            steps[step].map { "\(step.rawValue) \(String(format: "%.2f", Double($0) / Double(requests)))" }
        }.joined(separator: ", ")
        guard let roundTrips else { return byStep }
        return byStep + "; the store's round trips \(String(format: "%.2f", Double(roundTrips) / Double(requests)))"
    }
    var pullsPerSecond: Double { Double(pulls) / seconds }
    var requestsPerSecond: Double { Double(requests) / seconds }
    var seconds: Double { Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18 }
}

/// Every EC of `ecs` once; `issued`: as a new browser's first page view (the EC issued on it).
func run(
    _ options: Options,
    kernel: PullKernel,
    counter: StepCounter,
    roundTrips: () -> Int?,
    ecs: Range<Int>,
    issued: Bool = false
) async -> Phase {
    let before = counter.steps
    let roundTripsBefore = roundTrips()
    let started = ContinuousClock.now
    let pulls = await withTaskGroup(of: Int.self) { group in
        var next = ecs.lowerBound
        var pulls = 0
        func add() {
            let n = next
            next += 1
            group.addTask {
                let request = OrganicRequest(
                    path: "/article",
                    edgeCookie: TestPartners.edgeCookie(n),
                    ecIssuedOnThisRequest: issued,
                    consent: .granted
                )
                return await kernel.process(request).results.count { $0.write == .stored }
            }
        }
        for _ in 0..<min(options.concurrency, ecs.count) { add() }
        for await stored in group {
            pulls += stored
            if next < ecs.upperBound { add() }
        }
        return pulls
    }
    return Phase(
        requests: ecs.count,
        pulls: pulls,
        steps: counter.steps.merging(before.mapValues { -$0 }, uniquingKeysWith: +).filter { $0.value != 0 },
        roundTrips: roundTrips().flatMap { after in roundTripsBefore.map { after - $0 } },
        elapsed: ContinuousClock.now - started
    )
}

let options = Options(Array(CommandLine.arguments.dropFirst()))
let logger: Logger = {
    var logger = Logger(label: "store-benchmark")
    logger.logLevel = .error
    return logger
}()
let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("pullsync-store-bench-\(UUID())")
try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: scratch) }

var stores: [(String, String)] = [
    ("memory", "memory:"), ("sqlite", "sqlite:" + scratch.appendingPathComponent("bench.db").path),
]
if let postgres = options.postgres {
    let schema = "bench_\(UInt32.random(in: 0...UInt32.max))"
    stores.append(("postgres", postgres + (postgres.contains("?") ? "&" : "?") + "schema=\(schema)"))
}
print("store benchmark: \(options.ecs) ECs, \(options.partners) partners, \(options.concurrency) requests at a time")
print(
    "| store | round trips per request (all need a call) | (new EC) | (all fresh) | pulls/s | ratio to memory | "
        + "new EC pulls/s | fresh requests/s | ratio to memory |"
)
print("|---|---|---|---|---|---|---|---|---|")
var baseline: (pulls: Double, fresh: Double)?
var breakdowns: [String] = []
for (name, url) in stores {
    let store = try await StoreURL.open(url, drivers: [.memory, .sqlite, .postgres], logger: logger)
    let (sync, fresh, new) = try await store.whileRunning {
        let counter = StepCounter()
        let counted = try counter.counting(store)
        let kernel = PullKernel(
            registry: try PartnerRegistry((0..<options.partners).map { TestPartners.partner("p\($0)") }),
            configuration: PullSyncConfiguration(perRequestConcurrency: options.partners),
            graph: counted,
            rateLimiter: counted,
            transport: ScriptedTransport(fallback: .uid("u")),
            consent: IABConsentRules(),
            clock: SystemWallClock(),
            logger: logger
        )
        for n in 0..<options.ecs {
            // With the snapshot of the signals the requests carry, as the kernel creates it: the
            // first decision then has no changed snapshot to record.
            let now = SystemWallClock().now()
            _ = try await store.createRoot(
                for: EdgeCookie(unchecked: TestPartners.edgeCookie(n)),
                at: now,
                consent: ConsentSnapshot(ConsentStrings(), seenAt: now)
            )
        }
        let roundTrips = { (store as? SQLiteStore)?.transactionCount ?? (store as? PostgresStore)?.roundTrips }
        let sync = await run(options, kernel: kernel, counter: counter, roundTrips: roundTrips, ecs: 0..<options.ecs)
        let fresh = await run(options, kernel: kernel, counter: counter, roundTrips: roundTrips, ecs: 0..<options.ecs)
        let new = await run(
            options,
            kernel: kernel,
            counter: counter,
            roundTrips: roundTrips,
            ecs: options.ecs..<(2 * options.ecs),
            issued: true
        )
        return (sync, fresh, new)
    }
    guard sync.pulls == options.ecs * options.partners, new.pulls == sync.pulls else {
        print("error: \(name) stored \(sync.pulls) and \(new.pulls) UIDs, expected \(options.ecs * options.partners)")
        exit(1)
    }
    let base = baseline ?? (sync.pullsPerSecond, fresh.requestsPerSecond)
    baseline = base
    print(
        "| \(name) | \(String(format: "%.2f", sync.perRequest)) | \(String(format: "%.2f", new.perRequest)) | "
            + "\(String(format: "%.2f", fresh.perRequest)) | "
            + "\(Int(sync.pullsPerSecond)) | \(String(format: "%.3f", sync.pullsPerSecond / base.pulls)) | "
            + "\(Int(new.pullsPerSecond)) | \(Int(fresh.requestsPerSecond)) | \(String(format: "%.3f", fresh.requestsPerSecond / base.fresh)) |"
    )
    breakdowns.append("| \(name) | \(sync.breakdown) | \(new.breakdown) |")
}
print()
print("| store | round trips per request by step (all need a call) | (new EC) |")
// A step is one call to the store; the store's own round trips are SQLite's transactions and
// PostgreSQL's statements, which UID writes queued behind another share.
print("|---|---|---|")
for row in breakdowns { print(row) }
