import Foundation
import PartnerAdapterKit
import PartnerManifest
import PullSync
import Testing

@Suite struct PartnerLoaderTests {
    /// Every reference the shipped manifests make, resolved to a distinctive value.
    func shippedEnvironment() -> [String: String] {
        let set = ManifestLoader.load(paths: [shippedPartners])
        var environment: [String: String] = [:]
        for manifest in set.manifests {
            for use in manifest.secrets {
                if case .environment(let name) = use.reference { environment[name] = "tok-\(name)" }
            }
        }
        return environment
    }

    /// Resolves every reference to a distinctive value, as a deployment's secrets would.
    struct EveryReferenceResolves: SecretResolver {
        func resolve(_ reference: SecretReference) throws(SecretResolutionError) -> Secret {
            Secret("tok-\(reference)")
        }
    }

    @Test func shippedManifestsLoadAndEnableWithTheirSecrets() throws {
        let set = ManifestLoader.load(paths: [shippedPartners])
        let loaded = PartnerLoader.load(paths: [shippedPartners], secrets: EveryReferenceResolves())
        #expect(set.diagnostics.isEmpty)
        #expect(loaded.diagnostics.isEmpty)
        #expect(loaded.disabled.isEmpty)
        #expect(loaded.registry.partners.count == set.manifests.count)
        #expect(loaded.registry.partners.count >= 3)
        // Exactly the manifests with `enabled: true` (the default) are in the pull index.
        let enabled = Set(set.manifests.filter(\.pullEnabled).map(\.id))
        #expect(Set(loaded.registry.enabledIndices.map { loaded.registry.partners[$0].id }) == enabled)
        #expect(loaded.files.count == set.manifests.count)
    }

    /// Resolves nothing, as on a machine without the deployment's secrets.
    struct NothingResolves: SecretResolver {
        func resolve(_ reference: SecretReference) throws(SecretResolutionError) -> Secret {
            throw SecretResolutionError(reference: reference, problem: "is not set")
        }
    }

    @Test func aMissingSecretDisablesOnlyThatPartnerAndNamesTheReference() throws {
        let loaded = PartnerLoader.load(paths: [shippedPartners], secrets: NothingResolves())
        let set = ManifestLoader.load(paths: [shippedPartners])
        let withSecrets = set.manifests.filter { !$0.secrets.isEmpty }
        #expect(!withSecrets.isEmpty)
        #expect(loaded.disabled.count == withSecrets.count)
        for manifest in withSecrets {
            let partner = try #require(loaded.registry[id: manifest.id])
            let reason = try #require(partner.disabledReason)
            #expect(manifest.secrets.allSatisfy { reason.contains($0.reference.description) })
            #expect(!loaded.registry.enabledIndices.contains(loaded.registry.index(of: manifest.id)!))
            let diagnostic = try #require(loaded.diagnostics.first { $0.path == manifest.path })
            #expect(diagnostic.message.contains("partner '\(manifest.id)' is disabled"))
            if let location = manifest.secrets.first {
                #expect(diagnostic.line == location.line)
                #expect(diagnostic.column == location.column)
            }
        }
        // Partners without secrets stay enabled.
        let withoutSecrets = set.manifests.filter { $0.secrets.isEmpty && $0.pullEnabled }
        for manifest in withoutSecrets {
            #expect(loaded.registry.isEnabled(loaded.registry.index(of: manifest.id)!))
        }
    }

    @Test func secretsNeverAppearInDiagnosticsOrReasons() throws {
        let environment = shippedEnvironment()
        let loaded = PartnerLoader.load(
            paths: [shippedPartners],
            secrets: EnvironmentSecretResolver(environment: environment)
        )
        let text =
            loaded.diagnostics.map(\.description).joined() + loaded.disabled.map(\.reason).joined()
            + loaded.registry.partners.map { "\($0)" }.joined()
        for value in environment.values {
            #expect(!text.contains(value))
        }
    }
}

@Suite struct SecretResolverTests {
    @Test func environmentReferences() throws {
        let resolver = EnvironmentSecretResolver(environment: ["A": "alpha", "EMPTY": ""])
        #expect(try resolver.resolve(.environment("A")).reveal() == "alpha")
        #expect(throws: SecretResolutionError(reference: .environment("B"), problem: "is not set")) {
            try resolver.resolve(.environment("B"))
        }
        #expect(throws: SecretResolutionError(reference: .environment("EMPTY"), problem: "is empty")) {
            try resolver.resolve(.environment("EMPTY"))
        }
    }

    @Test func fileReferences() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try "s3cr3t\r\n".write(to: directory.appendingPathComponent("token"), atomically: true, encoding: .utf8)
        try Data(count: 70_000).write(to: directory.appendingPathComponent("big"))
        let resolver = EnvironmentSecretResolver(environment: [:], baseDirectory: directory.path)
        #expect(try resolver.resolve(.file("token")).reveal() == "s3cr3t")
        #expect(try resolver.resolve(.file(directory.appendingPathComponent("token").path)).reveal() == "s3cr3t")
        #expect(throws: SecretResolutionError(reference: .file("missing"), problem: "cannot be read")) {
            try resolver.resolve(.file("missing"))
        }
        #expect(throws: SecretResolutionError(reference: .file("big"), problem: "is larger than 64 KiB")) {
            try resolver.resolve(.file("big"))
        }
        let error = SecretResolutionError(reference: .file("/run/secrets/x"), problem: "is empty")
        #expect(error.description == "secret file:/run/secrets/x is empty")
    }
}
