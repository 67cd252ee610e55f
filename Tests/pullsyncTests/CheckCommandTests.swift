import Foundation
import Testing

@Suite struct CheckCommandTests {
    @Test func shippedManifestsPass() async throws {
        let result = try await runPullSync(["check", "partners.d"])
        #expect(result.status == 0)
        #expect(result.stderr.isEmpty)
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == 1)
        #expect(lines.first?.contains("valid") == true)
    }

    @Test func defaultPathIsPartnersD() async throws {
        let result = try await runPullSync(["check"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("valid"))
    }

    @Test func everyProblemInEveryFileIsReportedInCompilerFormat() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try """
        id: one
        source_domain: one.example
        pull:
          url: https://pull.one.example/x
          allowed_hosts: [pull.one.example]
          tiemout: 1s
          ttl: forever
        """.write(to: directory.appendingPathComponent("a.yaml"), atomically: true, encoding: .utf8)
        try """
        id: Two!
        source_domain: two.example
        pull:
          url: http://pull.two.example/x
          allowed_hosts: [pull.two.example]
        """.write(to: directory.appendingPathComponent("b.yml"), atomically: true, encoding: .utf8)
        try "ignored: true".write(to: directory.appendingPathComponent("notes.txt"), atomically: true, encoding: .utf8)

        let result = try await runPullSync(["check", directory.path])
        #expect(result.status == 1)
        let lines = result.stderr.split(separator: "\n").map(String.init)
        let diagnostics = lines.filter { $0.contains(": error: ") }
        let a = directory.appendingPathComponent("a.yaml").path
        let b = directory.appendingPathComponent("b.yml").path
        #expect(diagnostics.contains { $0.hasPrefix("\(a):6:3: error: ") && $0.contains("tiemout") })
        #expect(diagnostics.contains { $0.hasPrefix("\(a):7:8: error: ") && $0.contains("pull.ttl") })
        #expect(diagnostics.contains { $0.hasPrefix("\(b):1:5: error: ") && $0.contains("id") })
        #expect(diagnostics.contains { $0.hasPrefix("\(b):4:8: error: ") && $0.contains("https") })
        #expect(diagnostics.count == 4)
        // Every diagnostic line has the PATH:LINE:COLUMN: error: shape.
        let shape = #/^.+:\d+:\d+: error: .+$/#
        for line in diagnostics { #expect(line.wholeMatch(of: shape) != nil) }
        #expect(!diagnostics.contains { $0.contains("notes.txt") })
    }

    @Test(arguments: [
        ("empty.yaml", Data()),
        ("binary.yaml", Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919 &+ 13) })),
        ("deep.yaml", Data(String(repeating: "[", count: 100_000).utf8)),
        ("deep-map.yaml", Data(String(repeating: "{a: ", count: 50_000).utf8)),
        (
            "bomb.yaml",
            Data(
                """
                a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
                b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
                c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
                d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
                e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
                f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
                g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
                h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
                i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
                """.utf8
            )
        ),
        ("huge.yaml", Data(String(repeating: "# filler line\n", count: 200_000).utf8)),
    ])
    func hostileFilesGiveAnErrorNotACrash(name: String, contents: Data) async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent(name)
        try contents.write(to: file)
        let result = try await runPullSync(["check", file.path])
        #expect(result.exitedNormally)
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("\(file.path):"))
        #expect(result.stderr.contains(": error: "))
    }

    @Test func aMissingPathIsAnError() async throws {
        let result = try await runPullSync(["check", "/nonexistent/partners.d"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("/nonexistent/partners.d:1:1: error: "))
    }

    @Test func resolveSecretsReportsUnresolvedReferences() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try """
        id: one
        source_domain: one.example
        pull:
          url: https://pull.one.example/x
          allowed_hosts: [pull.one.example]
          auth:
            bearer: { env: PULLSYNC_TEST_UNSET_TOKEN }
        """.write(to: directory.appendingPathComponent("one.yaml"), atomically: true, encoding: .utf8)
        let plain = try await runPullSync(["check", directory.path])
        #expect(plain.status == 0)
        let resolved = try await runPullSync(["check", "--resolve-secrets", directory.path])
        #expect(resolved.status == 1)
        #expect(resolved.stderr.contains("env:PULLSYNC_TEST_UNSET_TOKEN is not set"))
        let set = try await runPullSync(
            ["check", "--resolve-secrets", directory.path],
            environment: ["PULLSYNC_TEST_UNSET_TOKEN": "value-that-must-not-print"]
        )
        #expect(set.status == 0)
        #expect(!(set.stdout + set.stderr).contains("value-that-must-not-print"))
    }
}

@Suite struct CheckEmptyFolderTests {
    @Test func aFolderWithoutManifestsFails() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try await runPullSync(["check", directory.path])
        #expect(result.status == 1)
        #expect(result.stderr.contains("\(directory.path):1:1: error: no partner manifests (*.yaml, *.yml) found"))
    }
}
