import ArgumentParser
import PullSyncConsent
import PullSyncKernel
import PullSyncStorage
import PullSyncTesting

/// Measure 7: 10 partners, `maxCallsPerRequest` 3, 10,000 new ECs within one hour of simulated
/// time: each partner's share of the calls made on an EC's first request (and of the first place),
/// with the kernel's fair order (the system's random source, as in production) vs one global
/// hourly rotation.
struct FairnessCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fairness",
        abstract: "Each partner's share of first calls: the kernel's fair order vs a global hourly rotation."
    )

    @Option(help: "Registered partners.")
    var partners: Int = 10

    @Option(name: .customLong("max-calls"), help: "maxCallsPerRequest.")
    var maxCalls: Int = 3

    @Option(help: "New ECs, evenly spread over one simulated hour.")
    var ecs: Int = 10_000

    func run() async throws {
        let partnerList = (0..<partners).map { TestPartners.partner("p\($0)") }
        let ids = partnerList.map(\.id)
        let clock = TestWallClock()
        let kernel = PullKernel(
            registry: try PartnerRegistry(partnerList),
            configuration: PullSyncConfiguration(maxCallsPerRequest: maxCalls),
            graph: InMemoryIdentityGraph(),
            rateLimiter: InMemoryRateLimiter(),
            transport: ScriptedTransport(fallback: .uid("u")),
            consent: IABConsentRules(),
            clock: clock
        )
        var ours = FirstCallTally(partnerIDs: ids)
        var rotation = FirstCallTally(partnerIDs: ids)
        let rotationOrder = HourlyRotation(partnerIDs: ids)
        let step = Duration.seconds(3600) / ecs
        let hourStart = clock.now()
        for n in 0..<ecs {
            let report = await kernel.process(
                OrganicRequest(
                    path: "/article",
                    edgeCookie: TestPartners.edgeCookie(n + 1),
                    ecIssuedOnThisRequest: true,
                    consent: .granted
                )
            )
            ours.record(report.plan.calls.map(\.partnerID))
            let hour = Int((clock.now() - hourStart).seconds / 3600)
            rotation.record(Array(rotationOrder.order(hour: hour).prefix(maxCalls)))
            clock.advance(by: step)
        }

        print(
            "fairness: \(partners) partners, maxCallsPerRequest \(maxCalls), \(ecs) new ECs within one simulated hour"
        )
        var table = MarkdownTable(header: [
            "partner", "calls (fair order)", "share / mean", "first place", "calls (hourly rotation)", "share / mean",
        ])
        let oursRelative = FirstCallTally.relativeToMean(ours.calls, partnerIDs: ids)
        let rotationRelative = FirstCallTally.relativeToMean(rotation.calls, partnerIDs: ids)
        for (index, id) in ids.enumerated() {
            table.add([
                id, "\(ours.calls[id, default: 0])", Statistics.format(oursRelative[index]),
                "\(ours.first[id, default: 0])", "\(rotation.calls[id, default: 0])",
                Statistics.format(rotationRelative[index]),
            ])
        }
        table.print()
        let oursWorst = FirstCallTally.worstDeviation(ours.calls, partnerIDs: ids)
        let firstWorst = FirstCallTally.worstDeviation(ours.first, partnerIDs: ids)
        let rotationWorst = FirstCallTally.worstDeviation(rotation.calls, partnerIDs: ids)
        print(
            "largest distance from the mean: fair order \(Statistics.format(oursWorst * 100, 1)) % of calls, "
                + "\(Statistics.format(firstWorst * 100, 1)) % of first places; hourly rotation \(Statistics.format(rotationWorst * 100, 1)) %"
        )
    }
}
