// Measure 1's instruction counts: decides one organic request `ITERATIONS` times and nothing else,
// so that `valgrind --tool=callgrind` at two iteration counts gives instructions per request (the
// difference over the difference: set-up cancels out). `scripts/bench` does that.
//
//     KernelInstructions PARTNERS fresh|call|baseline ITERATIONS
//
// fresh: every UID fresh, nothing to call; call: a known EC with no UIDs, every registered partner
// needs a call;
// baseline: one dictionary lookup per registered partner, the least a decision per partner can
// cost. Everything runs on the main thread (valgrind 3.19 crashes when Swift's cooperative pool
// starts its threads), on the kernel alone.
import PartnerAdapterKit
import PullSyncConsent
import PullSyncKernel
import PullSyncStorage
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

let arguments = CommandLine.arguments
guard arguments.count == 4, let partnerCount = Int(arguments[1]), let iterations = Int(arguments[3]),
    ["fresh", "call", "baseline"].contains(arguments[2])
else {
    print("usage: KernelInstructions PARTNERS fresh|call|baseline ITERATIONS")
    exit(1)
}
let scenario = arguments[2]

/// A fixed clock: the kernel reads it; nothing here needs it to move.
struct FixedClock: WallClock {
    func now() -> Timestamp { Timestamp(secondsSinceEpoch: 1_767_225_600) }
}

/// Plans are never executed.
struct NoTransport: PullTransport {
    func send(_ request: PullRequest, limits: TransportLimits) async -> TransportResult { .failure(.transportError) }
}

/// Runs every job on the thread that calls ``drain()``: no cooperative pool threads.
final class InlineExecutor: TaskExecutor {
    private let jobs = Mutex<[UnownedJob]>([])

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        jobs.withLock { $0.append(job) }
    }

    func drain() {
        while let job = jobs.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) {
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}

func edgeCookie(_ n: Int) -> String {
    var hex = String(UInt64(n), radix: 16)
    hex = String(repeating: "0", count: 64 - hex.count) + hex
    return hex + ".AbC123"
}

var total = 0
if scenario == "baseline" {
    let domains = (0..<partnerCount).map { "p\($0).example" }
    let entry = PartnerUID(uid: "u", syncedAt: Timestamp(secondsSinceEpoch: 0))
    let table = Dictionary(uniqueKeysWithValues: domains.map { ($0, entry) })
    for _ in 0..<iterations {
        for domain in domains where table[domain] != nil { total &+= 1 }
    }
} else {
    // As TestPartners builds them: a bearer-token GET to https://{id}.partner.example/pull.
    let partners = (0..<partnerCount).map { n -> Partner in
        let id = "p\(n)"
        let host = "\(id).partner.example"
        let configuration = HTTPPullAdapter.Configuration(
            url: PartnerURL(scheme: "https", host: host, path: "/pull"),
            auth: .bearer(.environment("TOKEN_\(id.uppercased())"))
        )
        return Partner(
            id: id,
            sourceDomain: "\(id).example",
            policy: PartnerPolicy(
                allowedHosts: AllowedHosts([host])
            ),
            adapter: HTTPPullAdapter(configuration: configuration, token: Secret("token-\(id)"))
        )
    }
    // All fresh: 64 known ECs in turn. All need a call: a new known EC every request (a new browser),
    // so rate-limit windows stay as short as in real traffic.
    let ecCount = scenario == "fresh" ? 64 : 10_000  // the same set-up at every iteration count
    let now = FixedClock().now()
    let records: [ECRecord] = (0..<ecCount).map { n in
        let ec = EdgeCookie(unchecked: edgeCookie(n + 1))
        var record = ECRecord(ecHash: ec.hashString, ecID: ec.value, createdAt: now)
        if scenario == "fresh" {
            for partner in partners { record.partners[partner.sourceDomain] = PartnerUID(uid: "u", syncedAt: now) }
        }
        return record
    }
    let kernel = PullKernel(
        registry: try PartnerRegistry(partners),
        // Plans are not executed: lift the per-partner in-flight cap that executing would release.
        configuration: PullSyncConfiguration(maxInFlightPerPartner: .max),
        graph: InMemoryIdentityGraph(records: records),
        rateLimiter: InMemoryRateLimiter(),
        transport: NoTransport(),
        consent: IABConsentRules(),
        clock: FixedClock(),
        random: SplitMixRandomSource(seed: 42)
    )
    let requests = (0..<ecCount).map { n in
        OrganicRequest(path: "/article", edgeCookie: edgeCookie(n + 1), consent: .granted)
    }
    let executor = InlineExecutor()
    let planned = Mutex(0)
    Task(executorPreference: executor) {
        var calls = 0
        // All fresh: each EC decided once before the counted requests, so that every one of them
        // finds what a returning browser's page view finds (the fresh-EC memo made by its first
        // decision), at every iteration count: a count below the ECs' number would otherwise mix
        // first decisions (a graph read, a decision per partner) into the difference.
        if scenario == "fresh" {
            for request in requests { kernel.abandon(await kernel.plan(request)) }
        }
        for iteration in 0..<iterations {
            let plan = await kernel.plan(requests[iteration % ecCount])
            calls &+= plan.calls.count
            kernel.abandon(plan)  // gives back in-flight places, as executing the calls would
        }
        planned.withLock { [calls] in $0 = calls }
    }
    executor.drain()
    total = planned.withLock { $0 }
}
print("decided \(iterations) requests (\(total) calls or hits)")
