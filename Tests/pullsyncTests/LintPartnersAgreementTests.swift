import Foundation
import Testing

/// `swift package lint-partners` runs `PartnerManifestTool lint`; it must agree with
/// `pullsync check` line for line and on the exit status, whatever the folder holds.
@Suite struct LintPartnersAgreementTests {
    static let good = """
        id: good
        source_domain: good.example
        pull:
          url: https://pull.good.example/x
          allowed_hosts: [pull.good.example]
        """

    static let signed = """
        id: signed
        source_domain: signed.example
        pull:
          url: https://pull.signed.example/x
          allowed_hosts: [pull.signed.example]
          adapter: signed-get
          params:
            key_id: k
            secret: { env: SIGNED_KEY }
        """

    static let unknownAdapter = """
        id: posted
        source_domain: posted.example
        pull:
          url: https://pull.posted.example/x
          allowed_hosts: [pull.posted.example]
          adapter: jsonpost
          params: { account_id: a }
        """

    static let badParams = """
        id: badparams
        source_domain: badparams.example
        pull:
          url: https://pull.badparams.example/x
          allowed_hosts: [pull.badparams.example]
          adapter: json-post
          params:
            account: a
            token: hunter2
            max_expiry: forever
          tiemout: 1s
        """

    static let duplicate = Self.good.replacingOccurrences(of: "id: good", with: "id: good\nname: Again")

    @Test(arguments: [
        ("good and compiled-adapter manifests", [("a.yaml", good), ("b.yaml", signed)]),
        ("an unknown adapter among good ones", [("a.yaml", good), ("b.yaml", unknownAdapter), ("c.yml", signed)]),
        ("bad parameters and a duplicate id", [("a.yaml", good), ("b.yaml", badParams), ("c.yaml", duplicate)]),
        ("no manifests", [("notes.txt", "not a manifest")]),
    ])
    func lintAndCheckAgree(folder: String, files: [(String, String)]) async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        for (name, text) in files {
            try text.write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        let check = try await runPullSync(["check", directory.path])
        let lint = try await run(builtBinary("PartnerManifestTool"), ["lint", directory.path])
        #expect(lint.status == check.status, "\(folder)")
        #expect(lint.stdout == check.stdout, "\(folder)")
        #expect(lint.stderr == check.stderr, "\(folder)")
        #expect(!(lint.stdout + lint.stderr).isEmpty)
        #expect(!lint.stderr.contains("hunter2"))
    }

    @Test func theShippedManifestsPassBoth() async throws {
        let check = try await runPullSync(["check"])
        let lint = try await run(builtBinary("PartnerManifestTool"), ["lint"])
        #expect(check.status == 0)
        #expect(lint.status == 0)
        #expect(lint.stdout == check.stdout)
        #expect(lint.stdout.contains("partners valid"))
    }
}
