import Foundation
import PackagePlugin

/// Compiles a target's `partners.d/` into it, for edge services that can't read files at run time.
///
/// The target holds `partners.d` (a folder, or a link to the package's `partners.d/`:
/// `ln -s ../../partners.d Sources/MyEdge/partners.d`). Its files are then the target's own,
/// so SwiftPM plans the build again when one is added or removed, and the next build picks it
/// up. The plugin runs `PartnerManifestTool generate`, which checks every manifest as
/// `pullsync check` does and writes `EmbeddedPartners.swift`; a bad manifest fails the build with
/// `PATH:LINE:COLUMN: error: MESSAGE` at the manifest itself.
@main
struct EmbedPartners: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) async throws -> [Command] {
        guard let target = target as? SourceModuleTarget else { return [] }
        let folder = target.directoryURL.appending(path: "partners.d")
        let manifests = target.sourceFiles
            .map(\.url)
            .filter { ["yaml", "yml"].contains($0.pathExtension) && $0.deletingLastPathComponent().lastPathComponent == "partners.d" }
            .sorted { $0.path < $1.path }
        guard FileManager.default.fileExists(atPath: folder.path) else {
            Diagnostics.error(
                "target '\(target.name)' applies EmbedPartners but has no partners.d folder; add one, or link the "
                    + "package's: ln -s ../../partners.d \(target.directoryURL.lastPathComponent)/partners.d"
            )
            return []
        }
        // Through the link, to the real folder: diagnostics then name the file people edit.
        let realFolder = folder.resolvingSymlinksInPath()
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedPartners.swift")
        return [
            .buildCommand(
                displayName: "Checking and embedding partners.d of \(target.name)",
                executable: try context.tool(named: "PartnerManifestTool").url,
                arguments: ["generate", "--output", output.path, realFolder.path],
                inputFiles: manifests,
                outputFiles: [output]
            )
        ]
    }
}
