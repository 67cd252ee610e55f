// One organic request's decisions (`PullKernel` planning: graph lookup, eligibility, fair
// order, request building, rate-limit counting) for 10, 100 and 1,000 registered partners,
// where every UID is fresh and where every partner needs a call: time and allocations per
// request. `Baseline` rows are one dictionary lookup per registered partner, measured in the
// same run, so times can be read as ratios. Instructions are counted with callgrind instead
// (see BENCHMARKS.md): perf counters are not available on every machine.
import Benchmark
import PartnerAdapterKit
import PullSyncConsent
import PullSyncKernel
import PullSyncStorage
import PullSyncTesting

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, .throughput],
        warmupIterations: 20,
        maxDuration: .seconds(2),
        maxIterations: 20_000
    )
    // A returning browser's page view whose EC the memo holds: the middleware's own cost. A
    // thousand page views per sample: the benchmark's own async closure per sample would
    // otherwise be most of each one's time.
    for otherCookies in [0, 12] {
        Benchmark(
            "Page/memo hit, EC and \(otherCookies) other cookies",
            configuration: .init(scalingFactor: .kilo)
        ) { benchmark, fixture in
            for _ in benchmark.scaledIterations {
                blackHole(try await fixture.view())
            }
        } setup: {
            await PageViewFixture(otherCookies: otherCookies)
        }
    }
    // A new browser's page view: an EC issued, its cookie set, the request handed over.
    Benchmark("Page/new browser, 12 cookies", configuration: .init(scalingFactor: .kilo)) { benchmark, fixture in
        for _ in benchmark.scaledIterations {
            blackHole(try await fixture.view())
        }
    } setup: {
        await PageViewFixture(otherCookies: 12, newBrowser: true)
    }
    // Reading a partner's answer for its UID, once per call.
    for answer in PartnerAnswer.allCases {
        Benchmark("Classify/\(answer.rawValue)") { benchmark, body in
            let adapter = HTTPPullAdapter(
                configuration: .init(url: PartnerURL(scheme: "https", host: "p.example", path: "/pull")),
                token: nil
            )
            let context = PullContext(
                edgeCookie: EdgeCookie(unchecked: TestPartners.edgeCookie(1)),
                partnerID: "p",
                sourceDomain: "p.example",
                now: TestWallClock().now()
            )
            for _ in benchmark.scaledIterations {
                blackHole(adapter.classify(.response(status: 200, headers: [], body: body), context: context))
            }
        } setup: {
            answer.body
        }
    }
    for count in [10, 100, 1000] {
        Benchmark("Baseline/\(count) partners") { benchmark, table in
            for _ in benchmark.scaledIterations {
                blackHole(table.lookUpAll())
            }
        } setup: {
            LookupTable(partners: count)
        }
        for scenario in DecisionScenario.allCases {
            Benchmark("Plan/\(count) partners/\(scenario.rawValue)") { benchmark, fixture in
                for iteration in benchmark.scaledIterations {
                    blackHole(await fixture.plan(iteration))
                }
            } setup: {
                DecisionFixture(partners: count, scenario: scenario)
            }
        }
    }
}

/// A partner's `200` answer: the UID alone, or among other fields.
enum PartnerAnswer: String, CaseIterable, Sendable {
    case uidOnly = "uid only"
    case uidAmongFields = "uid among 8 fields"

    var body: [UInt8] {
        switch self {
        case .uidOnly:
            Array(#"{"uid":"p0-8f3a2c9e41b7"}"#.utf8)
        case .uidAmongFields:
            Array(
                (#"{"status":"ok","ttl":86400,"uid":"p0-8f3a2c9e41b7","ts":1764979200,"region":"eu-west","#
                    + #""segments":[12,47,301],"meta":{"v":2,"src":"cookie"},"consent":true}"#).utf8
            )
        }
    }
}

enum DecisionScenario: String, CaseIterable, Sendable {
    case allFresh = "all fresh"
    case allNeedSync = "all need a call"
}

/// A kernel with `partners` registered partners and known ECs, all fresh or all empty.
struct DecisionFixture: Sendable {
    let kernel: PullKernel
    let requests: [OrganicRequest]

    init(partners count: Int, scenario: DecisionScenario) {
        let partners = (0..<count).map {
            TestPartners.partner("p\($0)")
        }
        let clock = TestWallClock()
        let now = clock.now()
        // All fresh: 64 known ECs in turn. All need a call: a new known EC every request (a new
        // browser), so rate-limit windows stay as short as in real traffic.
        let ecCount = scenario == .allFresh ? 64 : 20_100
        let records: [ECRecord] = (0..<ecCount).map { n in
            let ec = EdgeCookie(unchecked: TestPartners.edgeCookie(n + 1))
            var record = ECRecord(ecHash: String(ec.hash), ecID: ec.value, createdAt: now)
            if scenario == .allFresh {
                for partner in partners {
                    record.partners[partner.sourceDomain] = PartnerUID(uid: "u", syncedAt: now)
                }
            }
            return record
        }
        kernel = .benchmarked(partners, records: records, clock: clock)
        requests = (0..<ecCount).map { n in
            OrganicRequest(path: "/article", edgeCookie: TestPartners.edgeCookie(n + 1), consent: .granted)
        }
    }

    func plan(_ iteration: Int) async -> Int {
        await kernel.planWithoutSending(requests[iteration % requests.count])
    }
}

extension PullKernel {
    /// A kernel on a memory store holding `records`, with a scripted transport that is never
    /// called (plans are not executed, so nothing holds the per-partner in-flight places for long).
    static func benchmarked(_ partners: [Partner], records: [ECRecord], clock: TestWallClock) -> PullKernel {
        let store = MemoryStore(records: records)
        return PullKernel(
            registry: try! PartnerRegistry(partners),
            configuration: PullSyncConfiguration(maxInFlightPerPartner: .max),
            graph: store,
            rateLimiter: store,
            transport: ScriptedTransport(),
            consent: IABConsentRules(),
            clock: clock,
            random: SeededRandomSource(seed: 42)
        )
    }
}

/// The least a per-partner decision can cost: one dictionary lookup per registered partner.
struct LookupTable: Sendable {
    let domains: [String]
    let table: [String: PartnerUID]

    init(partners count: Int) {
        domains = (0..<count).map { "p\($0).example" }
        let entry = PartnerUID(uid: "u", syncedAt: Timestamp(secondsSinceEpoch: 0))
        table = Dictionary(uniqueKeysWithValues: domains.map { ($0, entry) })
    }

    func lookUpAll() -> Int {
        var found = 0
        for domain in domains where table[domain] != nil { found &+= 1 }
        return found
    }
}
