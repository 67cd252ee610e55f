// Measures the kernel's decision cost for one organic request (`PullKernel.plan`), for
// 10, 100 and 1,000 registered partners, where nothing needs syncing (every UID fresh)
// and where everything does. Each figure is also given as a ratio to a baseline measured
// in the same run: one dictionary lookup per registered partner, the least any
// per-partner decision can cost.
//
//     swift run -c release KernelDecisionsBenchmark [--iterations N]
import PullSyncKernel
import PullSyncTesting

@main
struct KernelDecisionsBenchmark {
    static func main() async throws {
        var iterations = 20_000
        let arguments = CommandLine.arguments
        if let flag = arguments.firstIndex(of: "--iterations"), flag + 1 < arguments.count,
            let value = Int(arguments[flag + 1])
        {
            iterations = value
        }
        print("kernel decision cost per organic request (\(iterations) requests per row, release build)")
        print("partners  scenario        ns/request  ns/partner  baseline ns/request  ratio")
        for count in [10, 100, 1000] {
            let baseline = measureBaseline(partners: count, iterations: iterations)
            for scenario in Scenario.allCases {
                let nanoseconds = try await measure(partners: count, scenario: scenario, iterations: iterations)
                let row = [
                    pad(String(count), 8),
                    pad(scenario.rawValue, 14),
                    pad(format(nanoseconds), 10, left: true),
                    pad(format(nanoseconds / Double(count)), 10, left: true),
                    pad(format(baseline), 19, left: true),
                    pad(format(nanoseconds / baseline, decimals: 1), 6, left: true),
                ]
                print(row.joined(separator: "  "))
            }
        }
    }

    enum Scenario: String, CaseIterable {
        case allFresh = "all-fresh"
        case allNeedSync = "all-need-sync"
    }

    static func makePartners(_ count: Int) -> [Partner] {
        (0..<count).map { TestPartners.partner("p\($0)", rateLimit: RateLimitPolicy(calls: 1_000_000)) }
    }

    static func measure(partners count: Int, scenario: Scenario, iterations: Int) async throws -> Double {
        let partners = makePartners(count)
        let registry = try PartnerRegistry(partners)
        let clock = TestWallClock()
        let now = clock.now()
        let ecCount = 1024
        let records: [ECRecord] = (0..<ecCount).map { n in
            let ec = EdgeCookie(unchecked: TestPartners.edgeCookie(n + 1))
            var record = ECRecord(ecHash: ec.hashString, ecID: ec.value, createdAt: now)
            if scenario == .allFresh {
                for partner in partners {
                    record.partners[partner.sourceDomain] = PartnerUID(uid: "u", syncedAt: now)
                }
            }
            return record
        }
        // Plans are measured, not executed: lift the in-flight cap that executing would release.
        let kernel = PullKernel(
            registry: registry,
            configuration: PullSyncConfiguration(maxInFlightPerPartner: .max),
            graph: InMemoryIdentityGraph(records: records),
            rateLimiter: InMemoryRateLimiter(),
            transport: ScriptedTransport(),
            clock: clock,
            random: SeededRandomSource(seed: 42)
        )
        let requests = (0..<ecCount).map { n in
            OrganicRequest(path: "/article", edgeCookie: TestPartners.edgeCookie(n + 1), consent: .granted)
        }
        var planned = 0
        for request in requests.prefix(64) {  // warm up
            let plan = await kernel.plan(request)
            planned += plan.calls.count
            kernel.abandon(plan)
        }
        let start = ContinuousClock.now
        for iteration in 0..<iterations {
            let plan = await kernel.plan(requests[iteration % ecCount])
            planned &+= plan.calls.count
            kernel.abandon(plan)  // gives back in-flight places, as executing the calls would
        }
        let elapsed = ContinuousClock.now - start
        if planned == -1 { print("unreachable") }  // keeps the work observable
        return Double(elapsed.nanoseconds) / Double(iterations)
    }

    static func measureBaseline(partners count: Int, iterations: Int) -> Double {
        let domains = (0..<count).map { "p\($0).example" }
        let entry = PartnerUID(uid: "u", syncedAt: Timestamp(secondsSinceEpoch: 0))
        let table = Dictionary(uniqueKeysWithValues: domains.map { ($0, entry) })
        var found = 0
        let start = ContinuousClock.now
        for _ in 0..<iterations {
            for domain in domains where table[domain] != nil { found &+= 1 }
        }
        let elapsed = ContinuousClock.now - start
        if found == -1 { print("unreachable") }
        return Double(elapsed.nanoseconds) / Double(iterations)
    }

    static func format(_ value: Double, decimals: Int = 0) -> String {
        if decimals == 0 { return String(Int(value.rounded())) }
        let scale = Double(10 * decimals)
        return String((value * scale).rounded() / scale)
    }

    static func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
        let padding = String(repeating: " ", count: max(0, width - text.count))
        return left ? padding + text : text + padding
    }
}
