import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import PartnerAdapterKit
import PullSync
import PullSyncConsent
import PullSyncStorage
import PullSyncTesting
import Synchronization

/// Measure 4: completed pulls per second through the dispatcher (queue, planning, sliding windows,
/// the global in-flight cap, the HTTPS transport, classification, UID writes) against a loopback
/// partner, vs a plain AsyncHTTPClient loop sending the same GETs at the same concurrency: the limit
/// the partner and the machine set. Rounds alternate, so both see the same machine.
struct FanOutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fanout",
        abstract:
            "Pulls per second through the dispatcher vs a plain AsyncHTTPClient loop, same GETs, same concurrency."
    )

    @Option(help: "Calls in flight at once (the dispatcher's maxInFlightCalls; the baseline's workers).")
    var concurrency: Int = 32

    @Option(help: "Partners (each organic request calls every one).")
    var partners: Int = 6

    @Option(help: "Organic requests per round (each makes one call per partner).")
    var requests: Int = 2000

    @Option(help: "Rounds of each, rotating which goes first.")
    var rounds: Int = 3

    @Option(name: .customLong("partner-delay-ms"), help: "How long the partner takes to answer (0: at once).")
    var partnerDelayMS: Int = 0

    @Option(help: "Run only this one (dispatcher, client or transport), e.g. under callgrind.")
    var only: String?

    @Flag(help: "Decide and call on BackgroundExecutor, as PullSyncService does (default: the global executor).")
    var background = false

    func run() async throws {
        let loopback = try await LoopbackPartners.start(count: partners)
        let partnerList = loopback.partners()
        if partnerDelayMS > 0 {
            for id in loopback.ids { loopback.script(id, .delayed(.milliseconds(partnerDelayMS), .uid("\(id)-uid"))) }
        }
        var transportConfiguration = HTTPPullTransport.Configuration(
            allowLoopback: true,
            additionalTrustRootFiles: [loopback.caFile],
            connectionsPerHost: concurrency
        )
        transportConfiguration.connectTimeout = .seconds(5)
        let transport = HTTPPullTransport(configuration: transportConfiguration, dedicatedThreads: 1)
        let baseline = try PlainClientLoop(caFile: loopback.caFile, concurrency: concurrency)

        var dispatcherRates: [Double] = []
        var baselineRates: [Double] = []
        var transportRates: [Double] = []
        var ecBase = 1
        // A short warm-up of each opens the connections.
        _ = try await dispatcherRound(partnerList, transport: transport, requests: 100, ecBase: &ecBase)
        _ = try await baseline.round(partnerList, requests: 100, ecBase: &ecBase)
        _ = try await transportRound(partnerList, transport: transport, requests: 100, ecBase: &ecBase)
        for round in 0..<rounds {
            // Rotate which goes first.
            for turn in 0..<3 {
                let kind = (round + turn) % 3
                if let only, only != ["dispatcher", "client", "transport"][kind] { continue }
                switch kind {
                case 0:
                    dispatcherRates.append(
                        try await dispatcherRound(
                            partnerList,
                            transport: transport,
                            requests: requests,
                            ecBase: &ecBase
                        )
                    )
                case 1:
                    baselineRates.append(try await baseline.round(partnerList, requests: requests, ecBase: &ecBase))
                default:
                    transportRates.append(
                        try await transportRound(partnerList, transport: transport, requests: requests, ecBase: &ecBase)
                    )
                }
            }
        }
        await transport.shutdown()
        try await baseline.shutdown()
        let peak = loopback.server.peakConcurrentRequests
        await loopback.shutdown()

        print(
            "fan-out: \(partners) partners x \(requests) organic requests per round, \(concurrency) calls in flight, \(rounds) rounds of each (rotating which goes first), HTTPS on loopback"
        )
        var table = MarkdownTable(header: [
            "round", "dispatcher pulls/s", "AsyncHTTPClient loop pulls/s", "ratio",
            "HTTPPullTransport loop pulls/s", "its ratio to the AsyncHTTPClient loop",
        ])
        func row(_ label: String, _ dispatcher: Double, _ baseline: Double, _ transport: Double) -> [String] {
            [
                label, Statistics.format(dispatcher, 0), Statistics.format(baseline, 0),
                Statistics.format(dispatcher / baseline), Statistics.format(transport, 0),
                Statistics.format(transport / baseline),
            ]
        }
        for round in 0..<rounds {
            // (With --only, the others have no rounds.)
            func at(_ rates: [Double]) -> Double { round < rates.count ? rates[round] : .nan }
            table.add(row("\(round + 1)", at(dispatcherRates), at(baselineRates), at(transportRates)))
        }
        table.add(
            row(
                "median",
                Statistics.median(dispatcherRates),
                Statistics.median(baselineRates),
                Statistics.median(transportRates)
            )
        )
        table.print()
        print("peak requests in progress at the partner: \(peak)")
    }

    /// One round through a new dispatcher (fresh in-memory store): every request's EC is issued on
    /// the request, so every partner needs a call. Returns completed pulls per second.
    func dispatcherRound(
        _ partners: [Partner],
        transport: HTTPPullTransport,
        requests: Int,
        ecBase: inout Int
    ) async throws -> Double {
        let kernel = PullKernel(
            registry: try PartnerRegistry(partners),
            configuration: PullSyncConfiguration(
                maxInFlightCalls: concurrency,
                maxInFlightPerPartner: concurrency,
                queueCapacity: requests,
                allowLoopback: true
            ),
            graph: InMemoryIdentityGraph(),
            rateLimiter: InMemoryRateLimiter(),
            transport: transport,
            consent: IABConsentRules(),
            clock: SystemWallClock()
        )
        let dispatcher = PullDispatcher(kernel: kernel, executor: background ? BackgroundExecutor.shared : nil)
        let organic = (0..<requests).map { n in
            OrganicRequest(
                path: "/article",
                edgeCookie: TestPartners.edgeCookie(ecBase + n),
                ecIssuedOnThisRequest: true,
                consent: .granted
            )
        }
        ecBase += requests
        let runner = Task { await dispatcher.run() }
        let started = ContinuousClock.now
        for request in organic { dispatcher.submit(request) }
        while dispatcher.statistics.processed < requests { try await Task.sleep(for: .milliseconds(1)) }
        let elapsed = ContinuousClock.now - started
        let statistics = dispatcher.statistics
        dispatcher.beginShutdown()
        await runner.value
        let expected = requests * partners.count
        guard statistics.calls == expected, statistics.stored == expected else {
            throw ValidationError(
                "dispatcher made \(statistics.calls) calls and stored \(statistics.stored), expected \(expected): \(statistics)"
            )
        }
        return Double(statistics.calls) / elapsed.seconds
    }
}

extension FanOutCommand {
    /// The transport alone, without the kernel: `concurrency` tasks sending the same planned requests
    /// through ``HTTPPullTransport`` (its deadline, pinning and body limit), to tell the kernel's share
    /// of the cost from the transport's.
    func transportRound(
        _ partners: [Partner],
        transport: HTTPPullTransport,
        requests: Int,
        ecBase: inout Int
    ) async throws -> Double {
        var calls: [(PullRequest, TransportLimits)] = []
        let now = SystemWallClock().now()
        for n in 0..<requests {
            let ec = EdgeCookie(unchecked: TestPartners.edgeCookie(ecBase + n))
            for partner in partners {
                let context = PullContext(
                    edgeCookie: ec,
                    partnerID: partner.id,
                    sourceDomain: partner.sourceDomain,
                    now: now
                )
                calls.append((try partner.adapter.makeRequest(for: context), TransportLimits(timeout: partner.policy.timeout)))
            }
        }
        ecBase += requests
        let next = NextIndex()
        let list = calls
        let started = ContinuousClock.now
        let completed = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var done = 0
                    while true {
                        let index = next.take()
                        guard index < list.count else { return done }
                        if case .response(200, _, let body) = await transport.send(list[index].0, limits: list[index].1),
                            !body.isEmpty
                        {
                            done += 1
                        }
                    }
                }
            }
            return await group.reduce(0, +)
        }
        let elapsed = ContinuousClock.now - started
        guard completed == list.count else {
            throw ValidationError("transport loop completed \(completed) of \(list.count)")
        }
        return Double(completed) / elapsed.seconds
    }
}

/// The baseline: `concurrency` tasks taking the next GET from a shared list, on one AsyncHTTPClient
/// (one event-loop thread, as the transport has, the same TLS trust), reading each body.
struct PlainClientLoop {
    let client: HTTPClient
    let group: MultiThreadedEventLoopGroup
    let concurrency: Int

    init(caFile: String, concurrency: Int) throws {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.additionalTrustRoots = [.file(caFile)]
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls, redirectConfiguration: .disallow)
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = concurrency
        configuration.httpVersion = .http1Only
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        client = HTTPClient(eventLoopGroupProvider: .shared(group), configuration: configuration)
        self.concurrency = concurrency
    }

    /// Sends one GET per (request, partner) pair, as the dispatcher would. Returns pulls per second.
    func round(_ partners: [Partner], requests: Int, ecBase: inout Int) async throws -> Double {
        var calls: [HTTPClientRequest] = []
        calls.reserveCapacity(requests * partners.count)
        for n in 0..<requests {
            let ec = TestPartners.edgeCookie(ecBase + n)
            for partner in partners {
                guard let adapter = partner.adapter as? HTTPPullAdapter else { continue }
                var request = HTTPClientRequest(url: adapter.configuration.url.rendered(query: [("ec_id", ec)]))
                request.headers.add(name: "Authorization", value: "Bearer token-\(partner.id)")
                calls.append(request)
            }
        }
        ecBase += requests
        let next = NextIndex()
        let list = calls
        let started = ContinuousClock.now
        let completed = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var done = 0
                    while true {
                        let index = next.take()
                        guard index < list.count else { return done }
                        let response = try await client.execute(list[index], timeout: .seconds(5))
                        let body = try await response.body.collect(upTo: 64 * 1024)
                        if response.status == .ok, body.readableBytes > 0 { done += 1 }
                    }
                }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = ContinuousClock.now - started
        guard completed == list.count else { throw ValidationError("baseline completed \(completed) of \(list.count)") }
        return Double(completed) / elapsed.seconds
    }

    func shutdown() async throws {
        try await client.shutdown()
        try await group.shutdownGracefully()
    }
}

/// The next GET a baseline worker takes.
final class NextIndex: Sendable {
    private let value = Atomic<Int>(0)
    func take() -> Int { value.add(1, ordering: .relaxed).oldValue }
}
