import Foundation
import PartnerManifest
import PullSyncKernel
import PartnerAdapterKit
import Testing

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
