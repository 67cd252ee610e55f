import ArgumentParser
import PullSyncKernel
import PullSyncTesting

/// Measure 1's instruction counts: runs `--iterations` decisions of one scenario and nothing else, so
/// that `valgrind --tool=callgrind` at two iteration counts gives instructions per request (the
/// difference over the difference; set-up cancels out). `scripts/bench` does that.
struct DecisionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decisions",
        abstract: "Plan one organic request N times (for callgrind): all fresh, all need a call, or the baseline."
    )

    enum Scenario: String, ExpressibleByArgument, CaseIterable {
        /// Every UID fresh: nothing to call.
        case fresh
        /// No UIDs: every registered partner needs a call.
        case call
        /// One dictionary lookup per registered partner: the least a decision per partner can cost.
        case baseline
    }

    @Option(help: "Registered partners.")
    var partners: Int = 10

    @Option(help: "fresh, call or baseline.")
    var scenario: Scenario = .fresh

    @Option(help: "Requests to decide.")
    var iterations: Int = 1000

    func run() async throws {
        var total = 0
        switch scenario {
        case .baseline:
            let domains = (0..<partners).map { "p\($0).example" }
            let entry = PartnerUID(uid: "u", syncedAt: Timestamp(secondsSinceEpoch: 0))
            let table = Dictionary(uniqueKeysWithValues: domains.map { ($0, entry) })
            for _ in 0..<iterations {
                for domain in domains where table[domain] != nil { total &+= 1 }
            }
        case .fresh, .call:
            let kernel = Self.makeKernel(partners: partners, fresh: scenario == .fresh)
            let requests = (0..<Self.ecCount).map { n in
                OrganicRequest(path: "/article", edgeCookie: TestPartners.edgeCookie(n + 1), consent: .granted)
            }
            for iteration in 0..<iterations {
                total &+= await kernel.planWithoutSending(requests[iteration % Self.ecCount]).calls.count
            }
        }
        print("decided \(iterations) requests (\(total) calls or hits)")
    }

    static let ecCount = 64

    /// `partners` registered partners and 64 known ECs whose UIDs are all fresh, or all missing.
    static func makeKernel(partners count: Int, fresh: Bool) -> PullKernel {
        let partners = (0..<count).map {
            TestPartners.partner("p\($0)", rateLimit: RateLimitPolicy(calls: 1_000_000_000))
        }
        let clock = TestWallClock()
        let now = clock.now()
        let records: [ECRecord] = (0..<ecCount).map { n in
            let ec = EdgeCookie(unchecked: TestPartners.edgeCookie(n + 1))
            var record = ECRecord(ecHash: ec.hashString, ecID: ec.value, createdAt: now)
            if fresh {
                for partner in partners { record.partners[partner.sourceDomain] = PartnerUID(uid: "u", syncedAt: now) }
            }
            return record
        }
        return PullKernel(
            registry: try! PartnerRegistry(partners),
            // Plans are not executed: lift the per-partner in-flight cap that executing would release.
            configuration: PullSyncConfiguration(maxInFlightPerPartner: .max),
            graph: InMemoryIdentityGraph(records: records),
            rateLimiter: InMemoryRateLimiter(),
            transport: ScriptedTransport(),
            clock: clock,
            random: SeededRandomSource(seed: 42)
        )
    }
}
