import Foundation
import PartnerManifest
import PullSyncKernel
import PartnerAdapterKit
import Testing

@testable import PartnerManifest

/// The examples in `docs/manifest-format.md` say what the loader does.
@Suite struct DocumentationTests {
    static let document: String = {
        let path = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()
            .deletingLastPathComponent()
            .deletingLastPathComponent()
            .appendingPathComponent("docs/manifest-format.md")
            .path
        return (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }()

    /// The fenced blocks of `language` in the document, in order.
    static func blocks(_ language: String) -> [String] {
        document.components(separatedBy: "```" + language + "\n").dropFirst().map {
            $0.components(separatedBy: "```").first ?? ""
        }
    }

    @Test func exampleManifestsLoad() throws {
        let manifests = Self.blocks("yaml").filter { $0.contains("source_domain:") && !$0.contains("tiemout") }
        #expect(manifests.count >= 2)
        for yaml in manifests {
            #expect(ManifestFixtures.diagnostics(yaml).map(\.description) == [])
        }
    }

    @Test func exampleDiagnosticsAreWhatTheLoaderPrints() throws {
        let bad = try #require(Self.blocks("yaml").first { $0.contains("tiemout") })
        let printed = try #require(
            Self.document.components(separatedBy: "gives:\n\n```\n").dropFirst().first?
                .components(separatedBy: "```").first
        )
        let result = ManifestLoader.load(bytes: Array(bad.utf8), path: "partners.d/acme.yaml")
        guard case .failure(let errors) = result else {
            Issue.record("the documented bad manifest loaded")
            return
        }
        #expect(errors.description + "\n" == printed)
    }

    /// The rows of the reference table under `heading` in the Keys section: key and type columns.
    static func keyRows(under heading: String) -> [(key: String, type: String)] {
        let section =
            document.components(separatedBy: "\n\(heading)\n").dropFirst().first?
            .components(separatedBy: "\n#").first ?? ""
        return section.split(separator: "\n").compactMap { line in
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            guard cells.count > 3, cells[1].hasPrefix("`"), cells[1].hasSuffix("`") else { return nil }
            return (String(cells[1].dropFirst().dropLast()), cells[2])
        }
    }

    /// How the reference writes each of the table's value types.
    static func written(_ type: ManifestKeys.ValueType) -> String {
        switch type {
        case .string: "string"
        case .boolean: "boolean"
        case .integer: "integer"
        case .number: "number"
        case .duration: "[duration](#durations)"
        case .mapping: "mapping"
        case .listOfStrings: "list of strings"
        case .listOfIntegers: "list of integers"
        case .templates: "mapping of name → [template](#templates)"
        case .secretReference: "[secret reference](#secrets)"
        }
    }

    /// The Keys section documents exactly the loader's table of keys, each with its type: the
    /// top level, `pull` (nested keys as `rate_limit.calls`), `consent` and `eid`.
    @Test(arguments: [
        ("### Top level", ""), ("### `pull`", "pull."), ("### `consent`", "consent."), ("### `eid`", "eid."),
    ])
    func theKeyReferenceFollowsTheKeyTable(heading: String, prefix: String) {
        let expected = ManifestKeys.all.compactMap { key -> String? in
            guard key.path.hasPrefix(prefix) else { return nil }
            let name = String(key.path.dropFirst(prefix.count))
            if prefix.isEmpty, name.contains(".") { return nil }
            return "\(name): \(Self.written(key.type))"
        }
        let documented = Self.keyRows(under: heading).map { "\($0.key): \($0.type)" }
        #expect(documented.sorted() == expected.sorted())
    }

    /// Each shipped compiled adapter has its own section, with a row for each parameter.
    @Test(arguments: AdapterDescriptor.builtIn)
    func everyCompiledAdapterParameterIsDocumented(descriptor: AdapterDescriptor) throws {
        let section = try #require(
            Self.document.components(separatedBy: "### `\(descriptor.name)`\n").dropFirst().first?
                .components(separatedBy: "\n### ").first
        )
        for parameter in descriptor.parameters {
            #expect(section.contains("| `\(parameter.name)` |"), "\(descriptor.name).\(parameter.name)")
        }
        #expect(section.contains("adapter: \(descriptor.name)\n"), "an example manifest")
    }
}
