import Foundation
import Testing

@Suite struct ExplainCommandTests {
    static let ec = String(repeating: "ab", count: 32) + ".Xy12Zq"

    struct Entry: Decodable {
        var partner: String
        var decision: String
        var reason: String
        var url: String?
    }

    struct Report: Decodable {
        var ec_id: String
        var ec_hash: String?
        var path: String
        var consent: String
        var issued: Bool
        var partners: [Entry]
    }

    func explain(_ extra: [String]) async throws -> Report {
        let result = try await runPullSync(
            ["explain", "--partners", "partners.d", "--ec-id", Self.ec, "--json"] + extra
        )
        #expect(result.status == 0, "stderr: \(result.stderr)")
        return try JSONDecoder().decode(Report.self, from: Data(result.stdout.utf8))
    }

    @Test func issuedECDispatchesEveryEnabledPartner() async throws {
        let report = try await explain(["--issued"])
        #expect(report.ec_hash == String(repeating: "ab", count: 32))
        #expect(report.partners.count >= 3)
        let enabled = report.partners.filter { $0.reason != "disabled" }
        #expect(!enabled.isEmpty)
        for entry in enabled {
            #expect(entry.decision == "dispatch")
            #expect(entry.reason == "eligible")
            // The URL carries the EC (or its hash, as the manifest asks) and never a token.
            let url = try #require(entry.url)
            #expect(url.hasPrefix("https://"))
            #expect(url.contains(String(Self.ec.prefix(64))))
            #expect(!url.contains("unresolved"))
        }
        for entry in report.partners where entry.reason == "disabled" {
            #expect(entry.decision == "skip")
        }
    }

    @Test(arguments: [
        ([String](), "unknown_ec"),
        (["--issued", "--consent", "denied"], "consent"),
        (["--issued", "--path", "/auction"], "route"),
        (["--issued", "--path", "/_pullsync/ids/x"], "route"),
        (["--issued", "--path", "/admin/users"], "route"),
    ])
    func requestLevelSkips(arguments: [String], reason: String) async throws {
        let report = try await explain(arguments)
        #expect(report.partners.contains { $0.reason != "disabled" })  // else the loop checks nothing
        for entry in report.partners where entry.reason != "disabled" {
            #expect(entry.decision == "skip")
            #expect(entry.reason == reason)
        }
    }

    @Test func malformedECIsInvalid() async throws {
        let result = try await runPullSync([
            "explain", "--partners", "partners.d", "--ec-id", "not-an-ec", "--issued", "--json",
        ])
        #expect(result.status == 0)
        #expect(result.stdout.contains("\"reason\":\"invalid_ec\""))
    }

    @Test func maxCallsPerRequestDefersTheRest() async throws {
        let report = try await explain(["--issued", "--max-calls-per-request", "1"])
        #expect(report.partners.filter { $0.decision == "dispatch" }.count == 1)
        let enabledCount = report.partners.filter { $0.reason != "disabled" }.count
        #expect(report.partners.filter { $0.reason == "deferred" }.count == enabledCount - 1)
    }

    @Test func tableOutputNamesEveryPartner() async throws {
        let json = try await explain(["--issued"])
        let result = try await runPullSync(["explain", "--partners", "partners.d", "--ec-id", Self.ec, "--issued"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("PARTNER"))
        for entry in json.partners {
            #expect(result.stdout.contains(entry.partner))
        }
    }

    @Test func unsupportedStoreIsAClearError() async throws {
        let result = try await runPullSync([
            "explain", "--partners", "partners.d", "--ec-id", Self.ec, "--store", "redis://x",
        ])
        #expect(result.status != 0)
        #expect(result.stderr.contains("unknown store URL 'redis://x'"))
    }
}
