import Foundation
import PullSync
import PullSyncSQLite
import PullSyncTesting
import PartnerSimulator
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `pullsync backfill` as a real process, against a loopback partner and an SQLite store.
@Suite(.serialized) struct BackfillCommandTests {
    /// A folder with a manifest for `server`'s `/pull` and an SQLite store holding ECs 1...`ecs`.
    func setUp(server: PartnerServer, ecs: Int) async throws -> (directory: URL, arguments: [String]) {
        let directory = try makeTemporaryDirectory()
        let partners = directory.appendingPathComponent("partners.d")
        try FileManager.default.createDirectory(at: partners, withIntermediateDirectories: true)
        try """
        id: newbie
        source_domain: newbie.example
        pull:
          url: http://127.0.0.1:\(server.port)/pull
          allowed_hosts: [127.0.0.1]
          timeout: 30s
        """.write(to: partners.appendingPathComponent("newbie.yaml"), atomically: true, encoding: .utf8)
        let path = directory.appendingPathComponent("store.db").path
        let store = try await SQLiteStore.open(path: path)
        for n in 1...ecs {
            _ = try await store.createRoot(
                for: EdgeCookie(unchecked: TestPartners.edgeCookie(n)),
                at: SystemWallClock().now()
            )
        }
        try await store.close()
        return (
            directory,
            [
                "backfill", "--partners", partners.path, "--partner", "newbie", "--store", "sqlite:" + path,
                "--allow-loopback",
            ]
        )
    }

    @Test("Interrupted with SIGINT: exits 130 with a summary; the same command resumes and completes, one call per EC")
    func interruptAndResume() async throws {
        let server = try await PartnerServer.start()
        server.script(path: "/pull", .delayed(.milliseconds(20), .uid("nb")))
        let (directory, arguments) = try await setUp(server: server, ecs: 120)
        defer { try? FileManager.default.removeItem(at: directory) }
        let command = arguments + ["--rate", "40/s", "--progress-interval", "0.5"]

        let process = Process()
        process.executableURL = try pullsyncBinary()
        process.arguments = command
        let output = Pipe()
        let errors = Pipe()
        let printed = Collector()
        let progress = Collector()
        output.fileHandleForReading.readabilityHandler = { printed.append($0.availableData) }
        errors.fileHandleForReading.readabilityHandler = { progress.append($0.availableData) }
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        #expect(await eventually { server.requestCount(path: "/pull") >= 40 })
        kill(process.processIdentifier, SIGINT)
        #expect(await eventually { !process.isRunning })
        #expect(process.terminationReason == .exit)
        #expect(process.terminationStatus == 130)
        #expect(await eventually { printed.value.contains("ECS") })
        output.fileHandleForReading.readabilityHandler = nil
        errors.fileHandleForReading.readabilityHandler = nil
        let interrupted = printed.value
        #expect(
            interrupted.contains("backfill newbie (newbie.example): interrupted; run the same command again to resume")
        )
        let called = server.requestCount(path: "/pull")
        #expect(called < 120)
        #expect(interrupted.contains("  handled:  \(called) of 120 ECs"), "\(interrupted)")
        // Not on a terminal: plain progress lines.
        #expect(progress.value.contains("backfill newbie: "))
        #expect(progress.value.contains("/120"))

        let resumed = try await runPullSync(command)
        #expect(resumed.status == 0)
        #expect(resumed.stdout.contains("backfill newbie (newbie.example): complete"))
        #expect(resumed.stdout.contains("  handled:  120 of 120 ECs (\(120 - called) in this run, resumed)"))
        #expect(resumed.stdout.contains(#/\nuid +call +120\n/#), "\(resumed.stdout)")

        var calls: [String: Int] = [:]
        for request in server.requests { calls[request.queryValue("ec_id") ?? "", default: 0] += 1 }
        #expect(calls.count == 120)
        #expect(calls.values.allSatisfy { $0 == 1 })
        try await server.shutdown()
    }

    @Test("--dry-run counts and samples, calling nothing; --limit stops early with exit 0")
    func dryRunAndLimit() async throws {
        let server = try await PartnerServer.start()
        server.script(path: "/pull", .uid("nb"))
        let (directory, arguments) = try await setUp(server: server, ecs: 30)
        defer { try? FileManager.default.removeItem(at: directory) }

        let dry = try await runPullSync(arguments + ["--dry-run", "--rate", "3/s"])
        #expect(dry.status == 0)
        #expect(dry.stdout.contains("candidates: 30 ECs missing or stale, known and not withdrawn"))
        #expect(dry.stdout.contains("at 3.0/s:    at least 0:10"))
        #expect(dry.stdout.components(separatedBy: "  dispatch").count - 1 == 10)
        #expect(server.requestCount(path: "/pull") == 0)

        let limited = try await runPullSync(arguments + ["--limit", "7", "--rate", "1000"])
        #expect(limited.status == 0)
        #expect(limited.stdout.contains("stopped at --limit 7; run again to go on"))
        #expect(server.requestCount(path: "/pull") == 7)

        let after = try await runPullSync(arguments + ["--dry-run"])
        #expect(after.stdout.contains("resumes:    after 7 ECs handled by an earlier run"))
        #expect(after.stdout.contains("candidates: 23 ECs"))
        try await server.shutdown()
    }

    @Test("A TCF partner is called only for ECs whose recent consent snapshot allows it; the dry run counts each rule")
    func tcfPartnerUnderSnapshots() async throws {
        let server = try await PartnerServer.start()
        server.script(path: "/pull", .uid("v2"))
        let (directory, arguments) = try await setUp(server: server, ecs: 3)  // no snapshots
        defer { try? FileManager.default.removeItem(at: directory) }
        try """
        id: vendor2
        source_domain: vendor2.example
        consent: { tcf_vendor_id: 2 }
        pull:
          url: http://127.0.0.1:\(server.port)/pull
          allowed_hosts: [127.0.0.1]
        """.write(to: directory.appendingPathComponent("partners.d/vendor2.yaml"), atomically: true, encoding: .utf8)
        // The TCF spec's example consents to vendors 2, 6 and 8 with purposes 1-3; iabtcf-java's has no purpose 1.
        let allows = ConsentStrings(tcf: "COvFyGBOvFyGBAbAAAENAPCAAOAAAAAAAAAAAEEUACCKAAA")
        let noPurposeOne = ConsentStrings(
            tcf: "COrEAV4OrXx94ACABBENAHCIAD-AAAAAAACAAxAAAAgAIAwgAgAAAAEAgQAAAAAEAYQAQAAAACAAAABAAA"
        )
        let now = SystemWallClock().now()
        let store = try await SQLiteStore.open(path: directory.appendingPathComponent("store.db").path)
        for (n, snapshot) in [
            (4, ConsentSnapshot(allows, seenAt: now)), (5, ConsentSnapshot(allows, seenAt: now - .seconds(86_400))),
            (6, ConsentSnapshot(noPurposeOne, seenAt: now)),
            (7, ConsentSnapshot(allows, seenAt: now - .seconds(400 * 86_400))),
        ] {
            _ = try await store.createRoot(for: EdgeCookie(unchecked: TestPartners.edgeCookie(n)), at: now, consent: snapshot)
        }
        try await store.close()
        let command = arguments.map { $0 == "newbie" ? "vendor2" : $0 }

        let dry = try await runPullSync(command + ["--dry-run"])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(dry.stdout.contains("candidates: 7 ECs"))
        #expect(dry.stdout.contains("consent:    5 of them kept out by their consent snapshot, 2 left"), "\(dry.stdout)")
        #expect(dry.stdout.contains("no_consent_snapshot          3"))
        #expect(dry.stdout.contains("consent_outdated             1"))
        #expect(dry.stdout.contains("tcf_consent                  1"))

        let run = try await runPullSync(command + ["--rate", "1000"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(server.requestCount(path: "/pull") == 2)
        let called = Set(server.requests.compactMap { $0.queryItems.first { $0.name == "ec_id" }?.value })
        #expect(called == [TestPartners.edgeCookie(4), TestPartners.edgeCookie(5)])
        // A shorter --consent-max-age-days leaves out the day-old snapshot too.
        let strict = try await runPullSync(command + ["--dry-run", "--consent-max-age-days", "1"])
        #expect(strict.stdout.contains("candidates: 5 ECs"), "\(strict.stdout)")
        try await server.shutdown()
    }

    @Test(
        "Bad invocations fail with exit 1 or a usage error naming the problem",
        arguments: [
            (["--partner", "nobody"], "no valid partner 'nobody'"),
            (["--partner", "newbie", "--rate", "fast"], "--rate 'fast' must be a positive number"),
            (["--partner", "newbie", "--rate", "0/s"], "--rate '0/s' must be a positive number"),
            (["--partner", "newbie", "--limit", "0"], "--limit must be at least 1"),
            (["--partner", "newbie", "--store", "redis://x"], "unknown store URL"),
            (["--partner", "newbie", "--consent-max-age-days", "0"], "--consent-max-age-days must be 1 to 36500"),
        ]
    )
    func badInvocations(extra: [String], message: String) async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let partners = directory.appendingPathComponent("partners.d")
        try FileManager.default.createDirectory(at: partners, withIntermediateDirectories: true)
        try """
        id: newbie
        source_domain: newbie.example
        pull:
          url: https://sync.newbie.example/pull
          allowed_hosts: [sync.newbie.example]
        """.write(to: partners.appendingPathComponent("newbie.yaml"), atomically: true, encoding: .utf8)
        var arguments = ["backfill", "--partners", partners.path]
        arguments += extra
        if !extra.contains("--store") {
            arguments += ["--store", "sqlite:" + directory.appendingPathComponent("s.db").path]
        }
        let result = try await runPullSync(arguments)
        #expect(result.status != 0)
        #expect(result.stderr.contains(message), "\(result.stderr)")
    }
}
