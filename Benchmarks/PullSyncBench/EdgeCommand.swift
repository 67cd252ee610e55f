import ArgumentParser
import AsyncHTTPClient
import Foundation
import PullSyncTesting

/// Measures 2, 3 and 6: `pullsync serve` under `wrk`, pull sync on vs off. Two processes of the same
/// binary, with the same arguments but `--no-pull-sync` (the middleware is not installed: the same
/// pages, no EC handling, no dispatch), serve the same traffic; rounds alternate between them, so
/// both see the same machine. Partners answer from one loopback HTTPS server.
struct EdgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edge",
        abstract: "pullsync serve under wrk, pull sync on vs off: fresh UIDs, slow partners, or overload."
    )

    enum Scenario: String, ExpressibleByArgument, CaseIterable {
        /// Partners answer at once, every request's EC is known and all its UIDs are fresh; wrk as fast as it can.
        case fresh
        /// Partners take 2 s; every request is a new browser (a new EC to sync); a moderate offered rate.
        case slow
        /// Partners never answer (they time out); every request a new browser; as many requests as wrk can
        /// offer (up to 20,000/s) for 30 s; peak memory and shed requests.
        case overload
    }

    @Option(help: "fresh, slow or overload.")
    var scenario: Scenario = .fresh

    @Option(help: "The pullsync binary (a release build).")
    var pullsync: String = ".build/release/pullsync"

    @Option(help: "Partners.")
    var partners: Int = 6

    @Option(help: "Rounds per mode (alternating on and off).")
    var rounds: Int?

    @Option(help: "Seconds per round.")
    var duration: Int?

    @Option(help: "wrk connections.")
    var connections: Int?

    @Option(name: .customLong("pause-ms"), help: "Each wrk connection's pause between requests (ms); 0 for none.")
    var pauseMS: Int?

    @Option(name: .customLong("known-ecs"), help: "Known ECs cycled through (fresh scenario).")
    var knownECs: Int = 500

    @Option(
        name: .customLong("perf-dir"),
        help: "Record each measured round of each server with `perf record -F 999 -g` into this folder (on-1.data, off-1.data, …)."
    )
    var perfDirectory: String?

    @Option(help: "Store URL template; {mode} becomes on or off. Default a SQLite file per process.")
    var store: String?

    @Flag(
        help: "Pages come from an origin (a third pullsync serve, --no-pull-sync) and, with pull sync on, carry the request's EIDs to it (--eids-header)."
    )
    var eids = false

    static let eidsHeader = "X-Pullsync-EIDs"

    func run() async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/wrk") else {
            throw BenchError("wrk is not installed (apt-get install -y wrk)")
        }
        let defaults: (rounds: Int, duration: Int, connections: Int, pause: Int) =
            switch scenario {
            case .fresh: (3, 10, 16, 0)
            case .slow: (3, 10, 8, 20)
            case .overload: (1, 30, 64, 3)
            }
        let rounds = rounds ?? defaults.rounds
        let wrk = Wrk(
            connections: connections ?? defaults.connections,
            duration: duration ?? defaults.duration,
            pauseMS: pauseMS ?? defaults.pause,
            scratch: FileManager.default.temporaryDirectory
        )

        let loopback = try await LoopbackPartners.start(count: partners)
        let timeout: String
        switch scenario {
        case .fresh:
            timeout = "1s"
        case .slow:
            for id in loopback.ids { loopback.script(id, .delayed(.seconds(2), .uid("\(id)-uid"))) }
            timeout = "5s"
        case .overload:
            for id in loopback.ids { loopback.script(id, .delayed(.seconds(3600), .uid("\(id)-uid"))) }
            timeout = "1s"
        }
        let manifests = try loopback.writeManifests(timeout: timeout)
        // The origin: the built-in page of a serve without pull sync, the same for on and off.
        let origin =
            eids
            ? try await ServeProcess.start(
                label: "origin",
                binary: pullsync,
                arguments: ["--partners", manifests, "--store", "memory:", "--no-pull-sync"],
                environment: [:]
            ) : nil
        func arguments(_ mode: String) -> [String] {
            let storeURL =
                store?.replacingOccurrences(of: "{mode}", with: mode)
                ?? "sqlite:" + loopback.scratch.appendingPathComponent("\(mode).db").path
            return [
                "--partners", manifests, "--allow-loopback", "--tls-ca-file", loopback.caFile, "--store", storeURL,
                "--client-ip-header", "X-Forwarded-For", "--grace-period", "1",
            ] + (mode == "off" ? ["--no-pull-sync"] : [])
                + (origin.map { ["--origin", $0.baseURL] } ?? [])
                + (origin != nil && mode == "on" ? ["--eids-header", Self.eidsHeader] : [])
        }
        let environment = ["BENCH_TOKEN": "bench-partner-token"]
        let on = try await ServeProcess.start(
            label: "on",
            binary: pullsync,
            arguments: arguments("on"),
            environment: environment
        )
        let off = try await ServeProcess.start(
            label: "off",
            binary: pullsync,
            arguments: arguments("off"),
            environment: environment
        )
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            try await measure(on: on, off: off, loopback: loopback, client: client, wrk: wrk, rounds: rounds)
        } catch {
            await on.stop()
            await off.stop()
            await origin?.stop()
            try? await client.shutdown()
            await loopback.shutdown()
            throw error
        }
        await on.stop()
        await off.stop()
        await origin?.stop()
        try await client.shutdown()
        await loopback.shutdown()
    }

    private func measure(
        on: ServeProcess,
        off: ServeProcess,
        loopback: LoopbackPartners,
        client: HTTPClient,
        wrk: Wrk,
        rounds: Int
    ) async throws {
        var traffic: Wrk.Traffic
        var nextIP = 1
        switch scenario {
        case .fresh:
            let ecs = try await prepareFreshECs(on: on, client: client)
            traffic = .knownECs(ecs)
        case .slow, .overload:
            traffic = .newECs(firstIP: nextIP)
        }
        // Warm-up: a few seconds of the same traffic on each.
        var warmUp = wrk
        warmUp.duration = 2
        for server in [on, off] {
            if case .newECs = traffic { traffic = .newECs(firstIP: nextIP) }
            let result = try warmUp.run(url: server.baseURL, traffic: traffic)
            nextIP += result.requests + 1000
        }
        let memoryBefore = (on: on.memory(), off: off.memory())
        let metricsBefore = try await on.metrics(client: client)

        var results: [String: [Wrk.Result]] = ["on": [], "off": []]
        // The server's CPU time during each of its rounds: what a page costs the edge's CPU, beside
        // what it costs in throughput (both move with what else runs on the machine).
        var cpu: [String: [Double]] = ["on": [], "off": []]
        // Busy cooperative-pool threads per round (see ``ServeProcess/busyPoolThreads``).
        var poolThreads: [String: [Int]] = ["on": [], "off": []]
        // Context switches of the server's threads per round: each a thread woken or preempted.
        var switches: [String: [Int]] = ["on": [], "off": []]
        for round in 0..<rounds {
            let order = round % 2 == 0 ? [on, off] : [off, on]
            for server in order {
                if case .newECs = traffic { traffic = .newECs(firstIP: nextIP) }
                let cpuBefore = server.cpuSeconds()
                let threadsBefore = server.threadCPU()
                let switchesBefore = server.threadSwitches()
                let recorder = try perfDirectory.map { directory in
                    try PerfRecorder(
                        pid: server.pid,
                        seconds: wrk.duration,
                        output: "\(directory)/\(server.label)-\(round + 1).data"
                    )
                }
                let result = try wrk.run(url: server.baseURL, traffic: traffic)
                recorder?.wait()
                cpu[server.label, default: []].append(server.cpuSeconds() - cpuBefore)
                switches[server.label, default: []].append(
                    ServeProcess.switches(before: switchesBefore, after: server.threadSwitches())
                )
                poolThreads[server.label, default: []].append(
                    ServeProcess.busyPoolThreads(before: threadsBefore, after: server.threadCPU(), seconds: result.seconds)
                )
                nextIP += result.requests + 1000
                results[server.label, default: []].append(result)
            }
        }
        let onMetrics = try await on.metrics(client: client)

        let description: String
        switch scenario {
        case .fresh:
            description =
                "partners answer at once; every request carries one of \(knownECs) known ECs whose \(partners) UIDs are all fresh"
        case .slow:
            description = "partners answer after 2 s (timeout 5 s); every request is a new browser, so a new EC to sync"
        case .overload:
            description = "partners never answer (timeout 1 s); every request is a new browser"
        }
        let offered =
            wrk.pauseMS > 0
            ? "at most \(wrk.connections) x 1000/\(wrk.pauseMS) = \(wrk.connections * 1000 / wrk.pauseMS) requests/s offered"
            : "as fast as wrk can"
        print(
            "edge (\(scenario.rawValue)): \(description); wrk -t1 -c\(wrk.connections), \(wrk.duration) s rounds, \(offered), \(rounds) round(s) per mode, alternating"
        )
        var table = MarkdownTable(header: [
            "round", "requests/s on", "off", "ratio", "p50 ms on", "off", "ratio", "p99 ms on", "off", "ratio",
        ])
        for round in 0..<rounds {
            let a = results["on"]![round]
            let b = results["off"]![round]
            table.add(Self.row("\(round + 1)", a.perSecond, b.perSecond, a.p50, b.p50, a.p99, b.p99))
        }
        let ons = results["on"]!
        let offs = results["off"]!
        // All rounds together: throughput over all requests, latency the median of the rounds' percentiles.
        let onRate = Double(ons.map(\.requests).reduce(0, +)) / ons.map(\.seconds).reduce(0, +)
        let offRate = Double(offs.map(\.requests).reduce(0, +)) / offs.map(\.seconds).reduce(0, +)
        table.add(
            Self.row(
                "all",
                onRate,
                offRate,
                Statistics.median(ons.map(\.p50)),
                Statistics.median(offs.map(\.p50)),
                Statistics.median(ons.map(\.p99)),
                Statistics.median(offs.map(\.p99))
            )
        )
        table.print()
        // Microseconds of the server's CPU per page, over `rounds` (all of them by default).
        func cpuPerPage(_ label: String, _ results: [Wrk.Result], rounds: Range<Int>? = nil) -> Double {
            let rounds = rounds ?? results.indices
            let pages = rounds.map { results[$0].requests }.reduce(0, +)
            return rounds.map { cpu[label]![$0] }.reduce(0, +) / Double(max(pages, 1)) * 1e6
        }
        let (cpuOn, cpuOff) = (cpuPerPage("on", ons), cpuPerPage("off", offs))
        let perRound = (0..<rounds).map { round in
            Statistics.format(
                cpuPerPage("on", ons, rounds: round..<round + 1) / cpuPerPage("off", offs, rounds: round..<round + 1),
                3
            )
        }
        print(
            "server CPU per page (µs, user + system, measured rounds): on \(Statistics.format(cpuOn, 1)), "
                + "off \(Statistics.format(cpuOff, 1)), on/off \(Statistics.format(cpuOn / cpuOff, 3)) "
                + "(rounds: \(perRound.joined(separator: ", ")))"
        )
        func switchesPerPage(_ label: String, _ results: [Wrk.Result]) -> Double {
            Double(switches[label]!.reduce(0, +)) / Double(max(results.map(\.requests).reduce(0, +), 1))
        }
        let (switchesOn, switchesOff) = (switchesPerPage("on", ons), switchesPerPage("off", offs))
        print(
            "server context switches per page (its threads', measured rounds): on \(Statistics.format(switchesOn, 2)), "
                + "off \(Statistics.format(switchesOff, 2)), on/off \(Statistics.format(switchesOn / max(switchesOff, 0.001), 3))"
        )
        print(
            "busy cooperative-pool threads per round (at least a tenth of a core): on "
                + poolThreads["on"]!.map(String.init).joined(separator: ", ") + "; off "
                + poolThreads["off"]!.map(String.init).joined(separator: ", ")
        )
        let errors = (ons + offs).map { $0.errors + $0.non2xx }.reduce(0, +)
        print("socket errors and non-2xx responses: \(errors)")
        print(Self.storeCost(before: metricsBefore, after: onMetrics, pages: ons.map(\.requests).reduce(0, +)))

        let submissions = ["enqueued", "dropped", "skipped", "not_running"].map {
            "\($0) \(Int(ServeProcess.sum(onMetrics, "pullsync_submissions_total", ["result=\"\($0)\""])))"
        }
        let gaveWay = Int(ServeProcess.sum(onMetrics, "pullsync_gave_way_total"))
        print("pull sync (on): submissions \(submissions.joined(separator: ", ")); gave way to pages \(gaveWay) times")
        let outcomes = ServeProcess.sum(onMetrics, "pullsync_outcomes_total")
        let stored = ServeProcess.sum(onMetrics, "pullsync_writes_total", ["result=\"stored\""])
        let skips = onMetrics.split(separator: "\n").filter {
            $0.hasPrefix("pullsync_decisions_total{") && !$0.contains("\"dispatch\"") && !$0.hasSuffix(" 0")
        }
        var skipTotals: [String: Double] = [:]
        for line in skips {
            guard let reason = line.firstMatch(of: #/decision="([a-z_]+)"/#)?.output.1,
                let value = line.split(separator: " ").last.flatMap({ Double($0) })
            else { continue }
            skipTotals[String(reason), default: 0] += value
        }
        print(
            "partner calls finished \(Int(outcomes)), UIDs stored \(Int(stored)), partner-level skips \(skipTotals.sorted { $0.key < $1.key }.map { "\($0.key) \(Int($0.value))" }.joined(separator: ", "))"
        )
        let memoryAfter = (on: on.memory(), off: off.memory())
        print(
            "resident memory (MiB): on peak \(Self.mib(memoryAfter.on.peakKB)), now \(Self.mib(memoryAfter.on.currentKB)) (after warm-up \(Self.mib(memoryBefore.on.currentKB))); "
                + "off peak \(Self.mib(memoryAfter.off.peakKB)), now \(Self.mib(memoryAfter.off.currentKB)) (after warm-up \(Self.mib(memoryBefore.off.currentKB)))"
        )
        print("partner server: peak requests in progress \(loopback.server.peakConcurrentRequests)")
    }

    static func row(
        _ label: String,
        _ rateOn: Double,
        _ rateOff: Double,
        _ p50On: Double,
        _ p50Off: Double,
        _ p99On: Double,
        _ p99Off: Double
    ) -> [String] {
        [
            label, Statistics.format(rateOn, 0), Statistics.format(rateOff, 0), Statistics.format(rateOn / rateOff, 3),
            Statistics.format(p50On, 3), Statistics.format(p50Off, 3), Statistics.format(p50On / p50Off, 3),
            Statistics.format(p99On, 3), Statistics.format(p99Off, 3), Statistics.format(p99On / p99Off, 3),
        ]
    }

    /// What the measured rounds' pages cost the store (pull sync on): round trips per page by
    /// operation, and where the EIDs came from.
    static func storeCost(before: String, after: String, pages: Int) -> String {
        func delta(_ name: String, _ labels: [String] = []) -> Double {
            ServeProcess.sum(after, name, labels) - ServeProcess.sum(before, name, labels)
        }
        let operations = [
            "lookup", "lookup_admit", "create_root", "create_root_admit", "admit", "uncount", "budget", "write", "release",
            "withdraw",
        ]
        let perPage = operations.compactMap { operation -> String? in
            let count = delta("pullsync_store_round_trips_total", ["operation=\"\(operation)\""])
            return count > 0 ? "\(operation) \(Statistics.format(count / Double(max(pages, 1)), 4))" : nil
        }
        let total = delta("pullsync_store_round_trips_total")
        let eids = ["memo", "store", "consent"].map { source in
            "\(source) \(Int(delta("pullsync_eids_total", ["source=\"\(source)\""])))"
        }
        return "store round trips per page (on, measured rounds, \(pages) pages): \(Statistics.format(total / Double(max(pages, 1)), 4))"
            + (perPage.isEmpty ? "" : " (\(perPage.joined(separator: ", ")))")
            + "; EID lookups: \(eids.joined(separator: ", "))"
    }

    static func mib(_ kilobytes: Int) -> String { Statistics.format(Double(kilobytes) / 1024, 1) }

    /// Issues `knownECs` ECs on the on-server (one per client IP), waits until every partner's UID is
    /// stored for each, and returns them.
    ///
    /// A call decided while its partner had `maxInFlightPerPartner` calls out is skipped
    /// (`partner_busy`), as it would be for a real browser, whose next page view then calls it. So
    /// once every decided call has ended, the ECs still missing a UID come back for another page
    /// view (all of them do: one whose UIDs are all stored costs the edge nothing).
    private func prepareFreshECs(on: ServeProcess, client: HTTPClient) async throws -> [String] {
        func pageView(_ n: Int, cookie: String?) async throws -> HTTPClientResponse {
            var request = HTTPClientRequest(url: on.baseURL + "/warm/\(n)")
            request.headers.add(name: "X-Forwarded-For", value: "198.18.\(n / 250).\(n % 250 + 1)")
            if let cookie { request.headers.add(name: "Cookie", value: "ts-ec=\(cookie)") }
            let response = try await client.execute(request, timeout: .seconds(10))
            _ = try await response.body.collect(upTo: 1 << 20)
            // Paced, so the queue never drops one.
            if n % 50 == 49 { try await Task.sleep(for: .milliseconds(200)) }
            return response
        }
        var ecs: [String] = []
        for n in 0..<knownECs {
            let response = try await pageView(n, cookie: nil)
            guard let cookie = response.headers["set-cookie"].first(where: { $0.hasPrefix("ts-ec=") }) else {
                throw BenchError("the edge issued no EC")
            }
            ecs.append(String(cookie.dropFirst(6).prefix { $0 != ";" }))
        }
        let expected = Double(knownECs * partners)
        let visits = 5
        var metrics = ""
        for visit in 1...visits {
            for _ in 0..<600 {
                metrics = try await on.metrics(client: client)
                if ServeProcess.sum(metrics, "pullsync_writes_total", ["result=\"stored\""]) >= expected { return ecs }
                // Every queued page decided (a decision per partner) and every call it made ended.
                let queued = ServeProcess.sum(metrics, "pullsync_submissions_total", ["result=\"enqueued\""])
                let decided = ServeProcess.sum(metrics, "pullsync_decisions_total") / Double(partners)
                let called = ServeProcess.sum(metrics, "pullsync_decisions_total", ["decision=\"dispatch\""])
                if decided >= queued && ServeProcess.sum(metrics, "pullsync_outcomes_total") >= called { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            guard visit < visits else { break }
            for (n, ec) in ecs.enumerated() { _ = try await pageView(n, cookie: ec) }
        }
        // What became of the calls and submissions, so that a run that stops here says why.
        let counts = metrics.split(separator: "\n").filter { line in
            ["pullsync_outcomes_total{", "pullsync_writes_total{", "pullsync_submissions_total{", "pullsync_decisions_total{"]
                .contains { line.hasPrefix($0) } && !line.hasSuffix(" 0")
        }
        throw BenchError(
            "the known ECs' UIDs were not all stored after \(visits) page views each (\(Int(expected)) expected); the on-server's counts:\n"
                + counts.joined(separator: "\n")
        )
    }
}

/// `perf record` attached to one server for one round (`--perf-dir`): only the pages measured,
/// not the warm-up or the set-up, are in the profile.
struct PerfRecorder {
    private let process: Process

    /// Records `pid` for `seconds` (until its `sleep` ends). perf is started through Python to
    /// unblock the signals it inherits blocked from this process (it waits for `SIGCHLD`).
    init(pid: Int32, seconds: Int, output: String) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        let perf = ["/usr/bin/perf", "record", "-F", "999", "-g", "-p", "\(pid)", "-o", output, "--", "sleep", "\(seconds)"]
        process.arguments = [
            "-c",
            "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, set()); os.execv(sys.argv[1], sys.argv[1:])",
        ] + perf
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    /// Waits until perf has written its file.
    func wait() { process.waitUntilExit() }
}
