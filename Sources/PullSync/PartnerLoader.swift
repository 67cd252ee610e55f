public import PartnerManifest
public import PullSyncAdapters
public import PullSyncKernel
public import PartnerAdapterKit

/// Partners loaded from manifest files: the registry the kernel runs on, and every problem
/// found on the way.
public struct LoadedPartners: Sendable {
    /// The valid partners. A partner whose secret did not resolve is in it, disabled.
    public var registry: PartnerRegistry
    /// Every file examined.
    public var files: [String]
    /// Every problem: manifest errors, and unresolved secrets when secrets were resolved.
    public var diagnostics: [ManifestDiagnostic]
    /// Partners disabled at load, with why (never a secret value).
    public var disabled: [(id: String, reason: String)]
    /// The problems of the manifests themselves (not an unresolved secret, which only disables
    /// its partner): what makes a hot reload keep the running partners.
    public var manifestErrors: [ManifestDiagnostic]
}

/// Loads `partners.d/` into a `PartnerRegistry`, resolving secrets on the way.
public enum PartnerLoader {
    /// Loads manifests from `paths` (folders and files).
    ///
    /// - Parameters:
    ///   - paths: folders (their `*.yaml` and `*.yml` files) and single manifest files.
    ///   - secrets: resolves secret references; `nil` leaves them unresolved (enough for
    ///     `check` and `explain`, which never send). A partner one of whose secrets doesn't
    ///     resolve is disabled with a reason naming the reference, and the others load.
    ///   - adapters: the compiled adapters manifests may name (`pull.adapter`); default the
    ///     ones this package ships.
    public static func load(
        paths: [String],
        secrets: (any SecretResolver)?,
        adapters: AdapterRegistry = .builtIn
    ) -> LoadedPartners {
        load(ManifestLoader.load(paths: paths, adapters: adapters.descriptors), secrets: secrets, adapters: adapters)
    }

    /// Loads manifests compiled into the binary by the build plugin (`EmbeddedPartners.manifests`
    /// in a target that applies `EmbedPartners`), exactly as ``load(paths:secrets:adapters:)``
    /// loads files.
    public static func load(
        embedded manifests: [EmbeddedManifest],
        secrets: (any SecretResolver)?,
        adapters: AdapterRegistry = .builtIn
    ) -> LoadedPartners {
        load(
            ManifestLoader.load(embedded: manifests, adapters: adapters.descriptors),
            secrets: secrets,
            adapters: adapters
        )
    }

    private static func load(
        _ set: ManifestSet,
        secrets: (any SecretResolver)?,
        adapters: AdapterRegistry
    ) -> LoadedPartners {
        var diagnostics = set.diagnostics
        var manifestErrors = set.diagnostics
        var disabled: [(id: String, reason: String)] = []
        var partners: [Partner] = []
        for manifest in set.manifests {
            var resolved: [SecretReference: Secret] = [:]
            var failures: [String] = []
            if let secrets {
                for use in manifest.secrets {
                    do {
                        resolved[use.reference] = try secrets.resolve(use.reference)
                    } catch {
                        diagnostics.append(
                            ManifestDiagnostic(
                                path: manifest.path,
                                line: use.line,
                                column: use.column,
                                message: "\(error.description); partner '\(manifest.id)' is disabled"
                            )
                        )
                        failures.append(error.description)
                    }
                }
            }
            let reason = failures.isEmpty ? nil : failures.joined(separator: "; ")
            do {
                partners.append(try manifest.makePartner(secrets: resolved, adapters: adapters, disabledReason: reason))
            } catch {
                // The manifest named a registered adapter with valid parameters, and the adapter
                // still refused them: the partner can't be built at all.
                let location = manifest.adapterLocation ?? manifest.idLocation
                let diagnostic = ManifestDiagnostic(
                    path: manifest.path,
                    line: location.line,
                    column: location.column,
                    message: "\(error.message); partner '\(manifest.id)' is not loaded"
                )
                diagnostics.append(diagnostic)
                manifestErrors.append(diagnostic)
                continue
            }
            if let reason { disabled.append((manifest.id, reason)) }
        }
        let registry: PartnerRegistry
        do {
            registry = try PartnerRegistry(partners)
        } catch {
            // The manifest loader already refuses duplicates; this is a second line of defence.
            for problem in error.problems {
                let diagnostic = ManifestDiagnostic(path: set.files.first ?? ".", line: 1, column: 1, message: problem)
                diagnostics.append(diagnostic)
                manifestErrors.append(diagnostic)
            }
            registry = try! PartnerRegistry([])
        }
        return LoadedPartners(
            registry: registry,
            files: set.files,
            diagnostics: diagnostics,
            disabled: disabled,
            manifestErrors: manifestErrors
        )
    }
}
