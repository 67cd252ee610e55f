import ArgumentParser
import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import PartnerAdapterKit
import PartnerSimulator
import PullSync
import PullSyncAdapters
import PullSyncEdge
import PullSyncStorage
import ServiceLifecycle

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the whole pipeline on this machine and print what happened.",
        discussion: """
            Starts loopback HTTPS partners (a throwaway test CA) for the manifests in --partners, \
            the edge service with the embedded store, drives organic traffic through it from \
            simulated browsers, then the same traffic with pull sync off, and prints requests \
            served, partner calls, outcomes, UIDs learned and page latency on vs off. No network \
            beyond loopback, no server to install. With --partner-delay-ms 2000 it is the \
            slow-partner latency benchmark.
            """
    )

    @Option(help: "The partner manifests folder.")
    var partners: String = "partners.d"

    @Option(help: "Simulated browsers (distinct client IPs).")
    var browsers: Int = 40

    @Option(name: .customLong("page-views"), help: "Organic page views per browser.")
    var pageViews: Int = 5

    @Option(help: "Browsers browsing at the same time.")
    var concurrency: Int = 8

    @Option(name: .customLong("partner-delay-ms"), help: "How long every partner takes to answer.")
    var partnerDelayMS: Int = 20

    @Option(name: .customLong("opt-out-every"), help: "Every Nth browser sends Sec-GPC: 1 (0 for none).")
    var optOutEvery: Int = 10

    @Option(name: .customLong("think-ms"), help: "A browser's pause between page views.")
    var thinkMS: Int = 25

    @Option(help: "The store URL; default a new SQLite file (the embedded store of serve), deleted afterwards.")
    var store: String?

    func validate() throws {
        guard browsers >= 1, pageViews >= 1, concurrency >= 1, partnerDelayMS >= 0, optOutEvery >= 0, thinkMS >= 0
        else {
            throw ValidationError("counts must be at least 1 and delays not negative")
        }
    }

    func run() async throws {
        let logger = Logger(label: "pullsync.demo", factory: { _ in SwiftLogNoOpLogHandler() })
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent(
            "pullsync-demo-\(UUID().uuidString)"
        )
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }

        // Partners: every enabled manifest answers from one loopback HTTPS server.
        let loaded = PartnerLoader.load(paths: [partners], secrets: DemoSecrets())
        for diagnostic in loaded.diagnostics { FileHandle.standardError.write(Data("\(diagnostic)\n".utf8)) }
        let enabled = loaded.registry.enabledIndices.map { loaded.registry.partners[$0] }
        let endpoints = enabled.compactMap(DemoEndpoint.init(partner:))
        guard !endpoints.isEmpty else {
            throw ValidationError("no enabled partners with a known protocol in \(partners)")
        }
        let hosts = Array(Set(endpoints.map(\.url.host))).sorted()
        let authority = TestCertificateAuthority(commonName: "pullsync demo CA")
        let caFile = scratch.appendingPathComponent("demo-ca.pem").path
        try authority.writeCACertificate(to: caFile)
        let server = try await PartnerServer.start(tls: try authority.issue(dnsNames: hosts))
        for endpoint in endpoints {
            server.script(path: endpoint.url.path, .delayed(.milliseconds(partnerDelayMS), .json(endpoint.answer)))
        }
        let loopback = IPAddress("127.0.0.1")!
        let resolver = StaticHostResolver(Dictionary(uniqueKeysWithValues: hosts.map { ($0, [loopback]) }))
        let serverPort = server.port

        print("pullsync demo")
        print(
            "  partners:  \(endpoints.map(\.partner.id).joined(separator: ", ")) on 127.0.0.1:\(serverPort) (HTTPS, throwaway CA), answering after \(partnerDelayMS) ms"
        )
        let disabled = loaded.registry.partners.filter { partner in !enabled.contains { $0.id == partner.id } }.map(
            \.id
        )
        if !disabled.isEmpty { print("  disabled:  \(disabled.joined(separator: ", "))") }
        print(
            "  store:     \(store.map { (try? StoreURL(parsing: $0).description) ?? $0 } ?? "sqlite (a scratch file per run)")"
        )

        // Baseline first, then pull sync; each edge is warmed up before it is measured. The
        // partner server is shut down whether or not the runs succeed.
        let off: Run
        var on: Run
        do {
            off = try await runEdge(
                pullSync: false,
                store: store ?? "sqlite:" + scratch.appendingPathComponent("off.db").path,
                caFile: caFile,
                resolver: resolver,
                serverPort: serverPort,
                logger: logger
            )
            on = try await runEdge(
                pullSync: true,
                store: store ?? "sqlite:" + scratch.appendingPathComponent("on.db").path,
                caFile: caFile,
                resolver: resolver,
                serverPort: serverPort,
                logger: logger
            )
        } catch {
            try? await server.shutdown()
            throw error
        }
        for endpoint in endpoints {
            on.callsByPath[endpoint.url.path] = server.requestCount(path: endpoint.url.path)
        }
        on.peakConcurrent = server.peakConcurrentRequests
        try await server.shutdown()

        let organic = on.traffic.organicLatencies.count
        print(
            "  traffic:   \(browsers) browsers x \(pageViews) page views \(thinkMS) ms apart, \(concurrency) at a time; the same with pull sync off as baseline"
        )
        print(
            "  served:    \(on.traffic.served) requests (\(organic) organic pages, \(on.traffic.excluded) /auction, \(on.traffic.optedOut) opted out with Sec-GPC)"
        )
        let calls = endpoints.map { "\($0.partner.id) \(on.callsByPath[$0.url.path] ?? 0)" }.joined(separator: ", ")
        print("  calls:     \(calls); at most \(on.peakConcurrent) in flight at the partners")
        let outcomes = on.statistics.outcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
        print("  outcomes:  \(outcomes.isEmpty ? "none" : outcomes.joined(separator: ", "))")
        print("  learned:   \(on.uidsLearned) UIDs for \(on.ecsWithUIDs) ECs (\(on.ecsKnown) ECs issued and known)")
        let skips = on.statistics.skips.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
        print(
            "  skipped:   \(skips.isEmpty ? "none" : skips.joined(separator: ", ")); \(on.statistics.dropped) dropped (queue full)"
        )
        let p50On = Self.percentile(on.traffic.organicLatencies, 0.50)
        let p99On = Self.percentile(on.traffic.organicLatencies, 0.99)
        let p50Off = Self.percentile(off.traffic.organicLatencies, 0.50)
        let p99Off = Self.percentile(off.traffic.organicLatencies, 0.99)
        print(
            "  latency:   organic pages p50 \(Self.ms(p50On)) ms, p99 \(Self.ms(p99On)) ms with pull sync; "
                + "p50 \(Self.ms(p50Off)) ms, p99 \(Self.ms(p99Off)) ms without "
                + "(ratio p50 \(Self.ratio(p50On, p50Off)), p99 \(Self.ratio(p99On, p99Off)))"
        )
    }

    struct Run {
        var traffic: Traffic
        var statistics: DispatcherStatistics
        var callsByPath: [String: Int]
        var peakConcurrent: Int
        var uidsLearned: Int
        var ecsWithUIDs: Int
        var ecsKnown: Int
    }

    struct Traffic {
        var served = 0
        var excluded = 0
        var optedOut = 0
        var organicLatencies: [Duration] = []
        /// The EC each browser ended with.
        var edgeCookies: Set<String> = []
    }

    private func runEdge(
        pullSync: Bool,
        store: String,
        caFile: String,
        resolver: StaticHostResolver,
        serverPort: Int,
        logger: Logger
    ) async throws -> Run {
        let (portStream, portInput) = AsyncStream.makeStream(of: Int.self)
        let service = try await EdgeService.make(
            configuration: EdgeServiceConfiguration(
                partnersDirectory: partners,
                port: 0,
                store: store,
                tlsCAFile: caFile,
                allowLoopback: true,
                clientIPHeader: "X-Forwarded-For",
                pullSyncEnabled: pullSync
            ),
            environment: [:],
            secrets: DemoSecrets(),
            hostResolver: resolver,
            wrapTransport: { PortRedirectingTransport(base: $0, port: serverPort) },
            logger: logger,
            onServerRunning: { port in
                portInput.yield(port)
                portInput.finish()
            }
        )
        let group = ServiceGroup(configuration: .init(services: [service.application], logger: logger))
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var edgePort = 0
            for await port in portStream { edgePort = port }
            // Warm-up: opted-out browsers exercise every page path but call no partner.
            _ = try await drive(port: edgePort, warmUp: true)
            let traffic = try await drive(port: edgePort)
            // Let pull sync finish what the traffic started (bounded wait).
            let deadline = ContinuousClock.now + .seconds(60)
            while pullSync, ContinuousClock.now < deadline {
                let statistics = service.pullSync.dispatcher.statistics
                if statistics.processed >= statistics.enqueued { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            // What the store learned for the browsers' ECs, read while it still runs.
            var learned = 0
            var withUIDs = 0
            var known = 0
            for edgeCookie in traffic.edgeCookies {
                guard let record = try await service.pullSync.store.record(ecHash: String(edgeCookie.prefix(64))) else {
                    continue
                }
                known += 1
                learned += record.partners.count
                if !record.partners.isEmpty { withUIDs += 1 }
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return Run(
                traffic: traffic,
                statistics: service.pullSync.dispatcher.statistics,
                callsByPath: [:],
                peakConcurrent: 0,
                uidsLearned: learned,
                ecsWithUIDs: withUIDs,
                ecsKnown: known
            )
        }
    }

    /// Browsers: each keeps its EC cookie, views pages, and calls /auction once.
    private func drive(port: Int, warmUp: Bool = false) async throws -> Traffic {
        let browsers = warmUp ? min(self.browsers, 20) : self.browsers
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { _ = client.shutdown() }
        let base = "http://127.0.0.1:\(port)"
        return try await withThrowingTaskGroup(of: Traffic.self) { group in
            var next = 0
            var total = Traffic()
            func add() {
                let browser = next
                next += 1
                group.addTask {
                    try await self.browse(browser, base: base, client: client, warmUp: warmUp)
                }
            }
            for _ in 0..<min(concurrency, browsers) { add() }
            for try await traffic in group {
                total.served += traffic.served
                total.excluded += traffic.excluded
                total.optedOut += traffic.optedOut
                total.organicLatencies += traffic.organicLatencies
                total.edgeCookies.formUnion(traffic.edgeCookies)
                if next < browsers { add() }
            }
            return total
        }
    }

    private func browse(_ browser: Int, base: String, client: HTTPClient, warmUp: Bool) async throws -> Traffic {
        var traffic = Traffic()
        let ip = warmUp ? "192.0.2.\(browser % 250 + 1)" : "198.51.\(100 + browser / 250).\(browser % 250 + 1)"
        let optsOut = warmUp || (optOutEvery > 0 && browser % optOutEvery == optOutEvery - 1)
        var cookie: String?
        for view in 0..<pageViews {
            var request = HTTPClientRequest(url: "\(base)/articles/\(browser)-\(view)")
            request.headers.add(name: "X-Forwarded-For", value: ip)
            if let cookie { request.headers.add(name: "Cookie", value: "ts-ec=\(cookie)") }
            if optsOut { request.headers.add(name: "Sec-GPC", value: "1") }
            let started = ContinuousClock.now
            let response = try await client.execute(request, timeout: .seconds(30))
            _ = try await response.body.collect(upTo: 1 << 20)
            traffic.organicLatencies.append(ContinuousClock.now - started)
            traffic.served += 1
            if optsOut { traffic.optedOut += 1 }
            for value in response.headers["set-cookie"] where value.hasPrefix("ts-ec=") {
                cookie = String(value.dropFirst(6).prefix { $0 != ";" })
            }
            if thinkMS > 0 && !warmUp { try await Task.sleep(for: .milliseconds(thinkMS)) }
        }
        var auction = HTTPClientRequest(url: "\(base)/auction")
        auction.headers.add(name: "X-Forwarded-For", value: ip)
        if let cookie { auction.headers.add(name: "Cookie", value: "ts-ec=\(cookie)") }
        _ = try await client.execute(auction, timeout: .seconds(30)).body.collect(upTo: 1 << 20)
        traffic.served += 1
        traffic.excluded += 1
        if let cookie { traffic.edgeCookies.insert(cookie) }
        return traffic
    }

    /// `{"uid": …}` nested along the manifest's `uid_field` path.

    static func percentile(_ values: [Duration], _ fraction: Double) -> Duration {
        guard !values.isEmpty else { return .zero }
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * fraction).rounded()))]
    }

    static func ms(_ duration: Duration) -> String {
        String(format: "%.2f", duration.seconds * 1000)
    }

    static func ratio(_ value: Duration, _ baseline: Duration) -> String {
        baseline > .zero ? String(format: "%.2f", value.seconds / baseline.seconds) : "n/a"
    }
}

/// The demo's partners accept any token: every reference resolves to a stand-in.
struct DemoSecrets: SecretResolver {
    func resolve(_ reference: SecretReference) throws(SecretResolutionError) -> Secret { Secret("demo-token") }
}

/// Sends every partner request to the demo's partner server port (the manifests name the
/// partners' real ports; their host names resolve to loopback through the demo's resolver).
struct PortRedirectingTransport: PullTransport {
    let base: any PullTransport
    let port: Int

    func send(_ request: PullRequest, limits: TransportLimits) async -> TransportResult {
        var redirected = request
        redirected.url.port = port
        return await base.send(redirected, limits: limits)
    }
}

/// One demo partner: where its requests go and what the loopback server answers, in the shape
/// its adapter reads.
struct DemoEndpoint {
    var partner: Partner
    var url: PartnerURL
    var answer: String

    /// `nil` for an adapter the demo doesn't know how to answer.
    init?(partner: Partner) {
        let uid = JSONValue.string("\(partner.id)-demo-uid")
        self.partner = partner
        switch partner.adapter {
        case let adapter as HTTPPullAdapter:
            url = adapter.configuration.url
            answer = Self.document([(adapter.configuration.uidPath, uid)])
        case let adapter as SignedGetAdapter:
            url = adapter.url
            answer = Self.document([(adapter.uidPath, uid)])
        case let adapter as JSONPostAdapter:
            // A week from now: a partner-given expiry, overriding the TTL.
            let week = 7 * 86_400.0
            let expiry =
                adapter.expiryFormat == .secondsFromNow
                ? week : Double(SystemWallClock().now().secondsSinceEpoch) + week
            url = adapter.url
            answer = Self.document([(adapter.uidPath, uid), (adapter.expiryPath, .number(expiry))])
        default:
            return nil
        }
    }

    /// A JSON object with each value at its path of object keys.
    static func document(_ values: [([String], JSONValue)]) -> String {
        var root = JSONValue.object([:])
        for (path, value) in values { root = inserting(value, at: path[...], into: root) }
        return render(root)
    }

    private static func inserting(_ value: JSONValue, at path: ArraySlice<String>, into node: JSONValue) -> JSONValue {
        guard let key = path.first else { return value }
        var members: [String: JSONValue] = [:]
        if case .object(let existing) = node { members = existing }
        members[key] = inserting(value, at: path.dropFirst(), into: members[key] ?? .object([:]))
        return .object(members)
    }

    private static func render(_ value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool(let flag): flag ? "true" : "false"
        case .number(let number): number == number.rounded() ? String(Int64(number)) : String(number)
        case .string(let text): "\"\(text)\""
        case .array(let elements): "[" + elements.map(render).joined(separator: ",") + "]"
        case .object(let members):
            "{" + members.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\(render($0.value))" }.joined(separator: ",")
                + "}"
        }
    }
}
