import Foundation
import PullSync
import PullSyncSQLite
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

    @Test func theEIDsTheRequestWouldCarryUnderItsConsent() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("store.db").path
        let store = try await SQLiteStore.open(path: path)
        let edgeCookie = EdgeCookie(unchecked: Self.ec)
        let now = SystemWallClock().now()
        _ = try await store.createRoot(for: edgeCookie, at: now)
        // Every shipped partner has a UID; northwind is disabled in its manifest.
        let sources = ["acme.example", "brightbid.example", "keystone.example", "id.northwind.example"]
        _ = try await store.write(
            sources.map { UIDWrite(sourceDomain: $0, value: PartnerUID(uid: "uid-\($0)", syncedAt: now), expected: nil) },
            ecHash: edgeCookie.hashString
        )
        try await store.close()

        struct EIDs: Decodable {
            struct EID: Decodable, Equatable {
                struct UID: Decodable, Equatable {
                    var id: String
                    var atype: Int
                }
                var source: String
                var uids: [UID]
            }
            var eids: [EID]
        }
        func eids(_ extra: [String]) async throws -> [String] {
            let result = try await runPullSync(
                ["explain", "--partners", "partners.d", "--ec-id", Self.ec, "--store", "sqlite:" + path, "--json"] + extra
            )
            #expect(result.status == 0, "stderr: \(result.stderr)")
            let report = try JSONDecoder().decode(EIDs.self, from: Data(result.stdout.utf8))
            for eid in report.eids { #expect(eid.uids == [EIDs.EID.UID(id: "uid-\(eid.source)", atype: 3)]) }
            return report.eids.map(\.source)
        }
        #expect(try await eids([]) == ["acme.example", "brightbid.example", "keystone.example"])
        // GPP's US national section applies: brightbid must be skipped there.
        #expect(try await eids(["--gpp", "DBABzw~1YNN~BVQqAAAACg"]) == ["acme.example", "keystone.example"])
        #expect(try await eids(["--us-privacy", "1YYN"]) == [])
        #expect(try await eids(["--issued"]) == [], "a browser issued its EC on this request has none yet")

        let table = try await runPullSync(
            ["explain", "--partners", "partners.d", "--ec-id", Self.ec, "--store", "sqlite:" + path]
        )
        #expect(table.stdout.contains("EIDs a bid request would carry (OpenRTB 2.6 user.eids):\n  acme.example  atype 3  uid-acme.example"))

        // Issue 19: a consent that refuses a partner with a UID says it would be revoked (and
        // explain revokes nothing).
        struct Revokes: Decodable {
            struct Entry: Decodable {
                var partner: String
                var revokes: Bool?
                var tells: Bool?
            }
            var partners: [Entry]
        }
        let refused = try await runPullSync(
            ["explain", "--partners", "partners.d", "--ec-id", Self.ec, "--store", "sqlite:" + path, "--json",
             "--gpp", "DBABzw~1YNN~BVQqAAAACg"]
        )
        let report = try JSONDecoder().decode(Revokes.self, from: Data(refused.stdout.utf8))
        #expect(report.partners.filter { $0.revokes == true }.map(\.partner) == ["brightbid"])
        // brightbid's manifest declares an opt-out endpoint: the revocation would tell it.
        #expect(report.partners.filter { $0.tells == true }.map(\.partner) == ["brightbid"])
        #expect(try await eids([]) == ["acme.example", "brightbid.example", "keystone.example"])
    }

    @Test func unsupportedStoreIsAClearError() async throws {
        let result = try await runPullSync([
            "explain", "--partners", "partners.d", "--ec-id", Self.ec, "--store", "redis://x",
        ])
        #expect(result.status != 0)
        #expect(result.stderr.contains("unknown store URL 'redis://x'"))
    }
}
