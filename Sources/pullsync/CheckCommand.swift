import ArgumentParser
import Foundation
import PartnerManifest
import PullSync

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate partner manifests.",
        discussion: """
            Prints one line per problem, PATH:LINE:COLUMN: error: MESSAGE, to standard error \
            and exits 1; prints one summary line and exits 0 when everything is valid.
            """
    )

    @Argument(help: "Manifest files or folders (a folder contributes its *.yaml and *.yml files).")
    var paths: [String] = ["partners.d"]

    @Flag(help: "Also report secret references ({ env: NAME }, { file: PATH }) that don't resolve here.")
    var resolveSecrets = false

    func run() throws {
        let loaded = PartnerLoader.load(paths: paths, secrets: resolveSecrets ? EnvironmentSecretResolver() : nil)
        // The same report `swift package lint-partners` prints, so the two agree line for line.
        let report = ManifestCheckReport(
            paths: paths,
            files: loaded.files,
            diagnostics: loaded.diagnostics,
            partners: loaded.registry.partners.count,
            enabled: loaded.registry.enabledIndices.count
        )
        FileHandle.standardOutput.write(Data(report.standardOutput.utf8))
        FileHandle.standardError.write(Data(report.standardError.utf8))
        if !report.isValid { throw ExitCode(1) }
    }
}
