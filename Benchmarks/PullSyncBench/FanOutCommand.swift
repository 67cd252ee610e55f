import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import PullSync
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

    @Option(help: "Rounds of each, alternating.")
    var rounds: Int = 3

    func run() async throws {
        let loopback = try await LoopbackPartners.start(count: partners)
        let partnerList = loopback.partners()
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
        var ecBase = 1
        // A short warm-up of each opens the connections.
        _ = try await dispatcherRound(partnerList, transport: transport, requests: 100, ecBase: &ecBase)
        _ = try await baseline.round(partnerList, requests: 100, ecBase: &ecBase)
        for round in 0..<rounds {
            // Alternate which goes first.
            if round % 2 == 0 {
                dispatcherRates.append(
                    try await dispatcherRound(partnerList, transport: transport, requests: requests, ecBase: &ecBase)
                )
                baselineRates.append(try await baseline.round(partnerList, requests: requests, ecBase: &ecBase))
            } else {
                baselineRates.append(try await baseline.round(partnerList, requests: requests, ecBase: &ecBase))
                dispatcherRates.append(
                    try await dispatcherRound(partnerList, transport: transport, requests: requests, ecBase: &ecBase)
                )
            }
        }
        await transport.shutdown()
        try await baseline.shutdown()
        let peak = loopback.server.peakConcurrentRequests
        await loopback.shutdown()

        print(
            "fan-out: \(partners) partners x \(requests) organic requests per round, \(concurrency) calls in flight, \(rounds) rounds each (alternating), HTTPS on loopback"
        )
        var table = MarkdownTable(header: ["round", "dispatcher pulls/s", "AsyncHTTPClient loop pulls/s", "ratio"])
        for round in 0..<rounds {
            table.add([
                "\(round + 1)", Statistics.format(dispatcherRates[round], 0),
                Statistics.format(baselineRates[round], 0),
                Statistics.format(dispatcherRates[round] / baselineRates[round]),
            ])
        }
        let dispatcherMedian = Statistics.median(dispatcherRates)
        let baselineMedian = Statistics.median(baselineRates)
        table.add([
            "median", Statistics.format(dispatcherMedian, 0), Statistics.format(baselineMedian, 0),
            Statistics.format(dispatcherMedian / baselineMedian),
        ])
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
            transport: transport
        )
        let dispatcher = PullDispatcher(kernel: kernel)
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
