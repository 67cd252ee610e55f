import Foundation
import PartnerManifest
import Testing

/// Manifest texts and helpers shared by the tests.
enum ManifestFixtures {
    /// A minimal valid manifest, five lines; tests append lines 6 and on.
    static let base = """
        id: acme
        source_domain: acme.example
        pull:
          url: https://sync.acme.example/v1/pull
          allowed_hosts: [sync.acme.example]

        """

    /// ``base`` with `pull.url` (line 4, value at column 8) replaced.
    static func withURL(_ url: String) -> String {
        base.replacingOccurrences(of: "https://sync.acme.example/v1/pull", with: url)
    }

    /// ``base`` with `pull.allowed_hosts`' value (line 5, column 18) replaced.
    static func withHosts(_ hosts: String) -> String {
        base.replacingOccurrences(of: "[sync.acme.example]", with: hosts)
    }

    /// The diagnostics of loading `yaml` as `m.yaml` (empty when it loads).
    static func diagnostics(_ yaml: String) -> [ManifestDiagnostic] {
        diagnostics(Array(yaml.utf8))
    }

    static func diagnostics(_ bytes: [UInt8]) -> [ManifestDiagnostic] {
        switch ManifestLoader.load(bytes: bytes, path: "m.yaml") {
        case .success: []
        case .failure(let errors): errors.diagnostics
        }
    }

    /// The manifest `yaml` describes; throws its diagnostics when it doesn't load.
    static func manifest(_ yaml: String) throws -> PartnerManifest {
        try ManifestLoader.load(bytes: Array(yaml.utf8), path: "m.yaml").get()
    }
}
