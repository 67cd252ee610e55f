import ArgumentParser
import Foundation
import PartnerAdapterKit
import PullSync
import PullSyncConsent
import PullSyncStorage
import PullSyncTesting
import Synchronization

/// Measure 5: one organic request, six eligible partners, three calls at a time, one partner taking
/// 1 s: how long until the five fast partners' UIDs are stored, for the kernel's sliding window vs
/// batch-and-wait (``BatchAndWait``). Both send the same planned requests through the same HTTPS
/// transport to the same loopback partners and write to the same kind of store; the slow partner is
/// put at each position of the order in turn.
struct HeadOfLineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hol",
        abstract: "Time until the fast partners' UIDs are stored: sliding window vs batch-and-wait."
    )

    @Option(help: "Eligible partners.")
    var partners: Int = 6

    @Option(help: "Calls in flight per request.")
    var concurrency: Int = 3

    @Option(name: .customLong("slow-ms"), help: "How long the slow partner takes.")
    var slowMS: Int = 1000

    @Option(help: "Repetitions per position (the median is reported).")
    var repetitions: Int = 5

    func run() async throws {
        let loopback = try await LoopbackPartners.start(count: partners)
        let partnerList = loopback.partners()
        let transport = HTTPPullTransport(
            configuration: HTTPPullTransport.Configuration(
                allowLoopback: true,
                additionalTrustRootFiles: [loopback.caFile]
            ),
            dedicatedThreads: 1
        )
        var ec = 1
        // Warm-up: connections open, code paths run once.
        for id in loopback.ids { loopback.script(id, .uid("\(id)-uid")) }
        _ = try await sliding(partnerList, transport: transport, slow: 0, ec: &ec)
        _ = try await batchAndWait(partnerList, transport: transport, slow: 0, ec: &ec)

        print(
            "head-of-line: \(partners) eligible partners, \(concurrency) at a time, one taking \(slowMS) ms; time until the other \(partners - 1) UIDs are stored (median of \(repetitions))"
        )
        var table = MarkdownTable(header: [
            "slow partner's place in the order", "sliding window (ms)", "batch-and-wait (ms)", "ratio sliding / batch",
        ])
        var slidingAll: [Double] = []
        var batchAll: [Double] = []
        for slow in 0..<partners {
            for (index, id) in loopback.ids.enumerated() {
                loopback.script(
                    id,
                    index == slow ? .delayed(.milliseconds(slowMS), .uid("\(id)-uid")) : .uid("\(id)-uid")
                )
            }
            var slidingTimes: [Double] = []
            var batchTimes: [Double] = []
            for repetition in 0..<repetitions {
                // Alternate which goes first.
                if repetition % 2 == 0 {
                    slidingTimes.append(try await sliding(partnerList, transport: transport, slow: slow, ec: &ec))
                    batchTimes.append(try await batchAndWait(partnerList, transport: transport, slow: slow, ec: &ec))
                } else {
                    batchTimes.append(try await batchAndWait(partnerList, transport: transport, slow: slow, ec: &ec))
                    slidingTimes.append(try await sliding(partnerList, transport: transport, slow: slow, ec: &ec))
                }
            }
            let slidingMedian = Statistics.median(slidingTimes)
            let batchMedian = Statistics.median(batchTimes)
            slidingAll.append(slidingMedian)
            batchAll.append(batchMedian)
            table.add([
                "\(slow + 1) of \(partners)", Statistics.format(slidingMedian, 1), Statistics.format(batchMedian, 1),
                Statistics.format(slidingMedian / batchMedian, 3),
            ])
        }
        let slidingMean = slidingAll.reduce(0, +) / Double(slidingAll.count)
        let batchMean = batchAll.reduce(0, +) / Double(batchAll.count)
        table.add([
            "mean over places (a random order)", Statistics.format(slidingMean, 1), Statistics.format(batchMean, 1),
            Statistics.format(slidingMean / batchMean, 3),
        ])
        table.print()
        await transport.shutdown()
        await loopback.shutdown()
    }

    /// A kernel whose fair order is the registry's order, so the slow partner's place is known.
    func makeKernel(_ partners: [Partner], transport: HTTPPullTransport, graph: TimedGraph) throws -> PullKernel {
        PullKernel(
            registry: try PartnerRegistry(partners),
            configuration: PullSyncConfiguration(perRequestConcurrency: concurrency, allowLoopback: true),
            graph: graph,
            rateLimiter: InMemoryRateLimiter(),
            transport: transport,
            consent: IABConsentRules(),
            clock: SystemWallClock(),
            random: RegistryOrder()
        )
    }

    func request(_ ec: inout Int) -> OrganicRequest {
        defer { ec += 1 }
        return OrganicRequest(
            path: "/article",
            edgeCookie: TestPartners.edgeCookie(ec),
            ecIssuedOnThisRequest: true,
            consent: .granted
        )
    }

    /// The kernel's own fan-out. Returns milliseconds until the fast partners' UIDs were stored.
    func sliding(_ partners: [Partner], transport: HTTPPullTransport, slow: Int, ec: inout Int) async throws -> Double {
        let graph = TimedGraph()
        let kernel = try makeKernel(partners, transport: transport, graph: graph)
        let request = request(&ec)
        let started = ContinuousClock.now
        let report = await kernel.process(request)
        guard report.plan.calls.map(\.partnerID) == partners.map(\.id) else {
            throw ValidationError("unexpected plan: \(report.plan.calls.map(\.partnerID))")
        }
        return try graph.millisecondsUntilStored(
            partners.indices.filter { $0 != slow }.map { partners[$0] },
            since: started
        )
    }

    /// Batch-and-wait over the same planned requests, transport, classification and store.
    func batchAndWait(
        _ partners: [Partner],
        transport: HTTPPullTransport,
        slow: Int,
        ec: inout Int
    ) async throws
        -> Double
    {
        let graph = TimedGraph()
        let kernel = try makeKernel(partners, transport: transport, graph: graph)
        let request = request(&ec)
        let started = ContinuousClock.now
        // Planned as the kernel plans (lookup, root entry, eligibility, rate limits), not sent.
        let plan = await kernel.plan(request)
        kernel.abandon(plan)
        let ecHash = String(request.edgeCookie!.prefix(64))
        let byID = Dictionary(uniqueKeysWithValues: partners.map { ($0.id, $0) })
        await BatchAndWait.run(plan.calls, concurrency: concurrency) { call in
            let partner = byID[call.partnerID]!
            let result = await transport.send(
                call.request,
                limits: TransportLimits(timeout: partner.policy.timeout, maxBodyBytes: 64 * 1024)
            )
            if case .uid(let uid, let expiresAt) = partner.adapter.classify(result, context: call.context) {
                let value = PartnerUID(uid: uid, syncedAt: call.context.now, expiresAt: expiresAt)
                _ = try? await graph.write(
                    [UIDWrite(sourceDomain: partner.sourceDomain, value: value, expected: call.expected)],
                    ecHash: ecHash
                )
            }
        }
        return try graph.millisecondsUntilStored(
            partners.indices.filter { $0 != slow }.map { partners[$0] },
            since: started
        )
    }
}

/// A fair order that is the registry's order: the kernel always draws the first of the partners
/// left (720,720 = lcm(1...16) leaves 0 for every `next(below: n)` up to 16).
struct RegistryOrder: RandomSource {
    func next() -> UInt64 { 720_720 }
}

/// An in-memory identity graph that notes when each UID was stored.
final class TimedGraph: IdentityGraph {
    private let base = InMemoryIdentityGraph()
    private let storedAt = Mutex<[String: ContinuousClock.Instant]>([:])

    func record(ecHash: String) async throws -> ECRecord? { try await base.record(ecHash: ecHash) }

    func createRoot(for edgeCookie: EdgeCookie, at now: Timestamp, consent: ConsentSnapshot?) async throws -> ECRecord {
        try await base.createRoot(for: edgeCookie, at: now, consent: consent)
    }

    func write(_ writes: [UIDWrite], ecHash: String) async throws -> [WriteResult] {
        let results = try await base.write(writes, ecHash: ecHash)
        let now = ContinuousClock.now
        storedAt.withLock { storedAt in
            for (write, result) in zip(writes, results) where result == .stored { storedAt[write.sourceDomain] = now }
        }
        return results
    }

    func withdraw(ecHash: String, at now: Timestamp, notifying: [String]) async throws -> Bool {
        try await base.withdraw(ecHash: ecHash, at: now, notifying: notifying)
    }
    func revoke(_ sourceDomains: [String], ecHash: String, at now: Timestamp, notifying: [String]) async throws -> [String] {
        try await base.revoke(sourceDomains, ecHash: ecHash, at: now, notifying: notifying)
    }
    func markSeen(ecHash: String, at now: Timestamp, consent: ConsentSnapshot?) async throws {
        try await base.markSeen(ecHash: ecHash, at: now, consent: consent)
    }

    /// Milliseconds from `start` until every one of `partners` had its UID stored.
    func millisecondsUntilStored(_ partners: [Partner], since start: ContinuousClock.Instant) throws -> Double {
        let times = storedAt.withLock { $0 }
        var latest = start
        for partner in partners {
            guard let time = times[partner.sourceDomain] else {
                throw ValidationError("no UID stored for \(partner.id)")
            }
            latest = max(latest, time)
        }
        return Statistics.milliseconds(latest - start)
    }
}
