import Foundation
import PackagePlugin

/// `swift package lint-partners [PATH ...]`: checks partner manifests (default `partners.d`) with
/// the same loader and the same output as `pullsync check`, so CI can lint without building the
/// command-line tool. Paths are relative to the package; nothing is written.
@main
struct LintPartners: CommandPlugin {
    func performCommand(context: PluginContext, arguments: [String]) async throws {
        let tool = try context.tool(named: "PartnerManifestTool")
        let process = Process()
        process.executableURL = tool.url
        process.arguments = ["lint"] + arguments
        // The tool prints paths as given, as `pullsync check` run from the package does.
        process.currentDirectoryURL = context.package.directoryURL
        try process.run()
        process.waitUntilExit()
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            throw LintFailed(status: process.terminationStatus)
        }
    }
}

/// The manifests have problems (printed above, one per line).
struct LintFailed: Error, CustomStringConvertible {
    var status: Int32
    var description: String { "partner manifests have problems (exit status \(status))" }
}
