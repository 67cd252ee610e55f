import Foundation
import Testing

/// `pullsync explain` with consent signals: each partner's consent decision appears as its own
/// reason, with what the signals said, in the table and in `--json`.
@Suite struct ExplainConsentTests {
    static let ec = String(repeating: "ab", count: 32) + ".Xy12Zq"
    /// TCF v2 specification URL example: purposes 1-3, vendors 2, 6 and 8 consented.
    static let tcf = "COvFyGBOvFyGBAbAAAENAPCAAOAAAAAAAAAAAEEUACCKAAA"

    struct Entry: Decodable {
        var partner: String
        var decision: String
        var reason: String
        var detail: String?
    }

    struct Signals: Decodable {
        var gpc: Bool
        var tcf: String
        var tcf_purpose_consents: [Int]?
        var gpp_sections: [Int]?
        var applicable_sections: [Int]
        var us: [String]
        var problems: [String]
        var request_denial: String?
    }

    struct Report: Decodable {
        var consent: String
        var signals: Signals
        var partners: [Entry]
    }

    /// Three partners: vendor 2 (consented in `tcf`), vendor 3 skipped in GPP section 7, and one
    /// without a vendor ID.
    static func partners() throws -> URL {
        let directory = try makeTemporaryDirectory()
        for (id, consent) in [
            ("v2", "consent: { tcf_vendor_id: 2 }"), ("v3", "consent: { tcf_vendor_id: 3, gpp_skip_sections: [7] }"),
            ("plain", ""),
        ] {
            try """
            id: \(id)
            source_domain: \(id).example
            pull:
              url: https://pull.\(id).example/x
              allowed_hosts: [pull.\(id).example]
            \(consent)
            """.write(to: directory.appendingPathComponent("\(id).yaml"), atomically: true, encoding: .utf8)
        }
        return directory
    }

    func explain(_ extra: [String], in directory: URL) async throws -> Report {
        let result = try await runPullSync(
            ["explain", "--partners", directory.path, "--ec-id", Self.ec, "--issued", "--json"] + extra
        )
        #expect(result.status == 0, "stderr: \(result.stderr)")
        return try JSONDecoder().decode(Report.self, from: Data(result.stdout.utf8))
    }

    @Test(
        "Each signal's decision per partner",
        arguments: [
            // (flags, [v2, v3, plain] reasons, v3's detail)
            ([String](), ["eligible", "eligible", "eligible"], nil),
            (["--tcf", tcf], ["eligible", "tcf_consent", "tcf_consent"], "vendor 3 has no consent"),
            // iabtcf-java TCStringV2Test: purposes 3-9 only.
            (
                ["--tcf", "COrEAV4OrXx94ACABBENAHCIAD-AAAAAAACAAxAAAAgAIAwgAgAAAAEAgQAAAAAEAYQAQAAAACAAAABAAA"],
                ["tcf_consent", "tcf_consent", "tcf_consent"],
                "purpose 1 (store and/or access information on a device) has no consent"
            ),
            (["--gpp", "DBABMA~" + tcf], ["eligible", "tcf_consent", "tcf_consent"], "vendor 3 has no consent"),
            (
                ["--gpp", "DBABMA~" + tcf, "--gpp-sid", "7"], ["eligible", "gpp_section", "eligible"],
                "GPP section 7 applies and the partner is skipped in it"
            ),
            (["--us-privacy", "1YNN"], ["eligible", "eligible", "eligible"], nil),
            (
                ["--us-privacy", "1YYN"], ["us_opt_out", "us_opt_out", "us_opt_out"],
                "us_privacy 1YYN opts out of sale"
            ),
            (["--gpc"], ["us_opt_out", "us_opt_out", "us_opt_out"], "Sec-GPC: 1 (Global Privacy Control)"),
            (
                ["--tcf", "Cg"], ["malformed_consent", "malformed_consent", "malformed_consent"],
                "TC string segment 1: Created ends past the string"
            ),
            (
                ["--consent", "denied", "--tcf", tcf], ["consent", "consent", "consent"],
                "the host's consent decision is denied"
            ),
        ] as [([String], [String], String?)]
    )
    func decisions(flags: [String], reasons: [String], detail: String?) async throws {
        let directory = try Self.partners()
        defer { try? FileManager.default.removeItem(at: directory) }

        let report = try await explain(flags, in: directory)

        #expect(Set(report.partners.map(\.partner)) == ["v2", "v3", "plain"])
        let byID = Dictionary(uniqueKeysWithValues: report.partners.map { ($0.partner, $0) })
        #expect([byID["v2"]?.reason, byID["v3"]?.reason, byID["plain"]?.reason] == reasons.map { Optional($0) })
        #expect(byID["v3"]?.detail == detail)
        for entry in report.partners {
            #expect(entry.decision == (entry.reason == "eligible" ? "dispatch" : "skip"))
        }
    }

    @Test("The decoded signals are printed with the decisions")
    func signals() async throws {
        let directory = try Self.partners()
        defer { try? FileManager.default.removeItem(at: directory) }

        let report = try await explain(
            ["--gpp", "DBACNYA~" + Self.tcf + "~1YNN", "--gpp-sid", "2,6"],
            in: directory
        )
        #expect(report.signals.tcf == "applies")
        #expect(report.signals.tcf_purpose_consents == [1, 2, 3])
        #expect(report.signals.gpp_sections == [2, 6])
        #expect(report.signals.applicable_sections == [2, 6])
        #expect(report.signals.us == ["GPP section 6 (uspv1) 1YNN: no opt-out"])
        #expect(report.signals.problems.isEmpty)
        #expect(report.signals.request_denial == nil)

        let table = try await runPullSync([
            "explain", "--partners", directory.path, "--ec-id", Self.ec, "--issued", "--tcf", Self.tcf,
        ])
        #expect(table.status == 0)
        #expect(
            table.stdout.contains("TCF: TC string from euconsent-v2 (CMP 27, policy 2); purposes with consent: 1,2,3")
        )
        #expect(table.stdout.contains("v3       skip      tcf_consent (vendor 3 has no consent)"))
        #expect(
            table.stdout.contains("plain    skip      tcf_consent (TCF applies and the partner has no tcf_vendor_id)")
        )
    }

    @Test("A section list that isn't one is refused")
    func badSectionList() async throws {
        let result = try await runPullSync([
            "explain", "--partners", "partners.d", "--ec-id", Self.ec, "--gpp-sid", "2,x",
        ])
        #expect(result.status != 0)
        #expect(result.stderr.contains("--gpp-sid must be GPP section IDs from 1 to 255"))
    }
}
