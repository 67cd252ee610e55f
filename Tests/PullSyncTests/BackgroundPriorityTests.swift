import CoreMetrics
import Foundation
import Logging
import NIOCore
import PullSync
import PullSyncConsent
import PullSyncKernel
import PullSyncTesting
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import Testing

/// Issue 17: pull sync's work runs below the pages' priority. ``PullSyncService`` decides and
/// calls each request on ``BackgroundExecutor``, whose threads libdispatch runs at a higher nice
/// value than the ones Swift's global executor (and a page's task) runs on.
@Suite struct BackgroundPriorityTests {
    /// The nice value of the thread the caller runs on (Linux's `/proc/thread-self/stat`).
    static func currentNice() throws -> Int {
        let stat = try String(contentsOfFile: "/proc/thread-self/stat", encoding: .utf8)
        // The fields after the command name (which may hold spaces) start at the state, field 3;
        // nice is field 19.
        let fields = try #require(stat.split(separator: ")").last).split(separator: " ")
        return try #require(Int(fields[16]))
    }

    static let hasProcStat = FileManager.default.fileExists(atPath: "/proc/thread-self/stat")

    @Test(
        "Work that prefers the background executor runs on a thread of a higher nice value",
        .enabled(if: hasProcStat)
    )
    func executorThreadsRunBelowTheGlobalOnes() async throws {
        let global = try Self.currentNice()
        let background = try await withTaskExecutorPreference(BackgroundExecutor.shared) { try Self.currentNice() }
        #expect(background > global)
    }

    @Test(
        "The dispatcher reads its queue on its executor's threads: a hand-over wakes none of the pages'",
        .enabled(if: hasProcStat),
        arguments: [true, false]
    )
    func queueReaderRunsOnTheExecutor(inBackground: Bool) async throws {
        let transport = ScriptedTransport()
        transport.script(TestPartners.host("acme"), .uid("acme-1"))
        let kernel = PullKernel(
            registry: try PartnerRegistry([TestPartners.partner("acme")]),
            configuration: PullSyncConfiguration(),
            graph: InMemoryIdentityGraph(),
            rateLimiter: InMemoryRateLimiter(),
            transport: transport,
            consent: IABConsentRules(),
            clock: TestWallClock(),
            random: SeededRandomSource(seed: 3)
        )
        // The reader asks the governor before it takes a request: it reports the reader's thread.
        let governor = NiceRecordingGovernor()
        let dispatcher = PullDispatcher(
            kernel: kernel,
            governor: governor,
            executor: inBackground ? BackgroundExecutor.shared : nil
        )
        let pageNice = try Self.currentNice()
        let running = Task { await dispatcher.run() }
        let ec = TestPartners.edgeCookie(11)
        #expect(
            dispatcher.submit(OrganicRequest(path: "/", edgeCookie: ec, ecIssuedOnThisRequest: true, consent: .granted))
                == .enqueued
        )
        #expect(await eventually { dispatcher.statistics.processed == 1 })
        dispatcher.beginShutdown()
        await running.value
        let nices = governor.nices.withLock { $0 }
        #expect(nices.count == 1)
        for nice in nices {
            if inBackground { #expect(nice > pageNice) } else { #expect(nice == pageNice) }
        }
    }

    @Test(
        "A transport's own event loop runs below the pages' with belowPages, beside them without",
        .enabled(if: hasProcStat),
        arguments: [true, false]
    )
    func transportLoopPriority(belowPages: Bool) async throws {
        let pageNice = try Self.currentNice()
        let transport = HTTPPullTransport(dedicatedThreads: 1, belowPages: belowPages)
        let loopNice = try await transport.eventLoopGroup.next().submit { try Self.currentNice() }.get()
        await transport.shutdown()
        if belowPages {
            #expect(loopNice == Int(ThreadPriority.backgroundNice))
            #expect(loopNice > pageNice)
        } else {
            #expect(loopNice == pageNice)
        }
    }

    @Test(
        "The service calls partners from the background executor's threads, or from the pages' with it off",
        .enabled(if: hasProcStat),
        arguments: [true, false]
    )
    func serviceCallsInTheBackground(runsInBackground: Bool) async throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("priority-\(UUID().uuidString)")
        let partners = scratch.appendingPathComponent("partners.d")
        try FileManager.default.createDirectory(at: partners, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        try """
        id: acme
        source_domain: acme.example
        pull:
          url: https://sync.acme.example/v1/pull
          allowed_hosts: [sync.acme.example]
        """.write(to: partners.appendingPathComponent("acme.yaml"), atomically: true, encoding: .utf8)
        let scripted = ScriptedTransport()
        scripted.script("sync.acme.example", .uid("acme-1"))
        let callerNice = Mutex<[Int]>([])
        let pullSync = try await PullSyncService(
            configuration: .init(
                partnersDirectory: partners.path,
                store: "memory:",
                reloadsOnHangup: false,
                cpuPressure: nil,
                runsInBackground: runsInBackground
            ),
            environment: ["PULLSYNC_EC_SECRET": "0123456789abcdef"],
            secrets: nil,
            metricsFactory: NOOPMetricsHandler.instance,
            wrapTransport: { _ in
                NiceRecordingTransport(base: scripted) { nice in callerNice.withLock { $0.append(nice) } }
            },
            logger: Logger(label: "priority", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        let pageNice = try Self.currentNice()
        let ec = TestPartners.edgeCookie(7)
        pullSync.submit(OrganicRequest(path: "/", edgeCookie: ec, ecIssuedOnThisRequest: true, consent: .granted))

        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await pullSync.run() }
                #expect(await eventually { pullSync.dispatcher.statistics.processed == 1 })
                trigger.triggerGracefulShutdown()
                try await group.next()
            }
        }
        let recorded = callerNice.withLock { $0 }
        #expect(recorded.count == 1, "skips: \(pullSync.dispatcher.statistics.skips)")
        for nice in recorded {
            if runsInBackground { #expect(nice > pageNice) } else { #expect(nice == pageNice) }
        }
        #expect(pullSync.dispatcher.statistics.stored == 1)
    }
}

/// Records the nice value of the thread each call is sent from, then answers through `base`.
private struct NiceRecordingTransport: PullTransport {
    let base: ScriptedTransport
    let record: @Sendable (Int) -> Void

    func send(_ request: PullRequest, limits: TransportLimits) async -> TransportResult {
        record((try? BackgroundPriorityTests.currentNice()) ?? -100)
        return await base.send(request, limits: limits)
    }
}

/// Records the nice value of the thread the dispatcher's reader asks it from; never holds back.
private final class NiceRecordingGovernor: LoadGovernor {
    let nices = Mutex<[Int]>([])

    func waitForRoom() async -> Bool {
        let nice = (try? BackgroundPriorityTests.currentNice()) ?? -100
        nices.withLock { $0.append(nice) }
        return false
    }
}

/// Issue 17: pull sync's parallelism is bounded by the executor's lanes.
@Suite struct BackgroundExecutorLaneTests {
    /// Runs `jobs` tasks on `executor`, each busy for a moment; returns how many ran at once at most.
    static func mostAtOnce(on executor: BackgroundExecutor, jobs: Int) async -> Int {
        let counts = Counts()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<jobs {
                group.addTask(executorPreference: executor) {
                    counts.started()
                    // Long enough for another thread to start a job meanwhile, if it may.
                    var spin = 0
                    for value in 0..<20_000 { spin &+= value &* 31 }
                    counts.ended(spin)
                }
            }
        }
        return counts.most.load(ordering: .sequentiallyConsistent)
    }

    /// Jobs running now, and the most seen at once.
    final class Counts: Sendable {
        let running = Atomic<Int>(0)
        let most = Atomic<Int>(0)
        let sink = Atomic<Int>(0)

        func started() {
            let now = running.add(1, ordering: .sequentiallyConsistent).newValue
            most.max(now, ordering: .sequentiallyConsistent)
        }

        func ended(_ work: Int) {
            sink.store(work, ordering: .relaxed)
            running.subtract(1, ordering: .sequentiallyConsistent)
        }
    }

    @Test("With one lane, never two of its jobs at once; with two, never three", arguments: [1, 2])
    func lanesBoundParallelism(lanes: Int) async {
        let executor = BackgroundExecutor(lanes: lanes)
        #expect(executor.laneCount == lanes)
        let most = await Self.mostAtOnce(on: executor, jobs: 400)
        #expect(most >= 1)
        #expect(most <= lanes)
    }

    @Test("The shared executor has a lane per four cores, at least one")
    func sharedLanes() {
        #expect(BackgroundExecutor.shared.laneCount == max(1, System.coreCount / 4))
    }
}
