import ArgumentParser
import Foundation
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
        var diagnostics = loaded.diagnostics
        // A check pointed at the wrong folder must not pass: no manifests is a problem.
        if loaded.files.isEmpty && diagnostics.isEmpty {
            diagnostics = paths.map {
                ManifestDiagnostic(path: $0, line: 1, column: 1, message: "no partner manifests (*.yaml, *.yml) found")
            }
        }
        guard diagnostics.isEmpty else {
            var output = ""
            for diagnostic in diagnostics { output += diagnostic.description + "\n" }
            let files = Set(diagnostics.map(\.path)).count
            output +=
                "\(diagnostics.count) problem\(diagnostics.count == 1 ? "" : "s") in \(files) file\(files == 1 ? "" : "s")\n"
            FileHandle.standardError.write(Data(output.utf8))
            throw ExitCode(1)
        }
        let partners = loaded.registry.partners.count
        let enabled = loaded.registry.enabledIndices.count
        print(
            "\(loaded.files.count) file\(loaded.files.count == 1 ? "" : "s") checked: \(partners) partner\(partners == 1 ? "" : "s") valid (\(enabled) enabled for pull sync)"
        )
    }
}
