public import PartnerManifest
public import PullSyncKernel

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
}

/// Loads `partners.d/` into a ``PartnerRegistry``, resolving secrets on the way.
public enum PartnerLoader {
    /// Loads manifests from `paths` (folders and files).
    ///
    /// - Parameter secrets: resolves token references; `nil` leaves them unresolved (enough
    ///   for `check` and `explain`, which never send). A partner whose secret doesn't
    ///   resolve is disabled with a reason naming the reference, and the others load.
    public static func load(paths: [String], secrets: (any SecretResolver)?) -> LoadedPartners {
        let set = ManifestLoader.load(paths: paths)
        var diagnostics = set.diagnostics
        var disabled: [(id: String, reason: String)] = []
        var partners: [Partner] = []
        for manifest in set.manifests {
            guard let secrets, let reference = manifest.secretReference else {
                partners.append(manifest.makePartner(token: nil))
                continue
            }
            do {
                partners.append(manifest.makePartner(token: try secrets.resolve(reference)))
            } catch {
                let location = manifest.secretLocation ?? (line: 1, column: 1)
                diagnostics.append(
                    ManifestDiagnostic(
                        path: manifest.path,
                        line: location.line,
                        column: location.column,
                        message: "\(error.description); partner '\(manifest.id)' is disabled"
                    )
                )
                disabled.append((manifest.id, error.description))
                partners.append(manifest.makePartner(token: nil, disabledReason: error.description))
            }
        }
        let registry: PartnerRegistry
        do {
            registry = try PartnerRegistry(partners)
        } catch {
            // The manifest loader already refuses duplicates; this is a second line of defence.
            for problem in error.problems {
                diagnostics.append(ManifestDiagnostic(path: paths.first ?? ".", line: 1, column: 1, message: problem))
            }
            registry = try! PartnerRegistry([])
        }
        return LoadedPartners(registry: registry, files: set.files, diagnostics: diagnostics, disabled: disabled)
    }
}
