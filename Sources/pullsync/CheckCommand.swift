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
        guard loaded.diagnostics.isEmpty else {
            var output = ""
            for diagnostic in loaded.diagnostics { output += diagnostic.description + "\n" }
            let files = Set(loaded.diagnostics.map(\.path)).count
            output +=
                "\(loaded.diagnostics.count) problem\(loaded.diagnostics.count == 1 ? "" : "s") in \(files) file\(files == 1 ? "" : "s")\n"
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
