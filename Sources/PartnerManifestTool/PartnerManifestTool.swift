import Foundation
import PartnerManifest

/// The one tool behind both plugins (as swift-openapi-generator's plugins run one generator):
///
/// - `lint [PATH ...]`: the check `pullsync check` runs, printed the same way (`swift package
///   lint-partners`).
/// - `generate --output FILE PATH ...`: validates the manifests and writes Swift source embedding
///   them (the `EmbedPartners` build plugin).
///
/// Problems are printed by the tool itself as `PATH:LINE:COLUMN: error: MESSAGE` on standard
/// error, with a non-zero exit: a plugin's own diagnostics would lose the file and line.
@main
struct PartnerManifestTool {
    static let usage = """
        usage: PartnerManifestTool lint [PATH ...]
               PartnerManifestTool generate --output FILE PATH ...
        """

    static func main() {
        var arguments = Array(CommandLine.arguments.dropFirst())
        guard !arguments.isEmpty else { fail(usage) }
        let command = arguments.removeFirst()
        switch command {
        case "lint":
            exit(lint(paths: arguments.isEmpty ? ["partners.d"] : arguments))
        case "generate":
            guard arguments.count >= 3, arguments[0] == "--output" else { fail(usage) }
            exit(generate(output: arguments[1], paths: Array(arguments.dropFirst(2))))
        default:
            fail(usage)
        }
    }

    static func lint(paths: [String]) -> Int32 {
        let report = ManifestCheckReport(paths: paths, set: ManifestLoader.load(paths: paths))
        write(report.standardOutput, to: .standardOutput)
        write(report.standardError, to: .standardError)
        return report.isValid ? 0 : 1
    }

    static func generate(output: String, paths: [String]) -> Int32 {
        let set = ManifestLoader.load(paths: paths)
        let report = ManifestCheckReport(paths: paths, set: set)
        guard report.isValid else {
            write(report.standardError, to: .standardError)
            return 1
        }
        var embedded: [EmbeddedManifest] = []
        for file in set.files {
            guard let data = FileManager.default.contents(atPath: file) else {
                write("\(file):1:1: error: cannot be read\n", to: .standardError)
                return 1
            }
            // The loader accepted the file, so it is UTF-8.
            embedded.append(EmbeddedManifest(path: displayPath(file), text: String(decoding: data, as: UTF8.self)))
        }
        let source = EmbeddedPartnersSource.render(manifests: embedded, ids: set.manifests.map(\.id))
        do {
            try writeIfChanged(source, to: output)
        } catch {
            write("\(output):1:1: error: cannot be written: \(error)\n", to: .standardError)
            return 1
        }
        return 0
    }

    /// `partners.d/acme.yaml`: the folder and file name, for diagnostics at run time (the
    /// build machine's absolute paths mean nothing where the binary runs).
    static func displayPath(_ path: String) -> String {
        let components = path.split(separator: "/")
        return components.suffix(2).joined(separator: "/")
    }

    /// Leaves an unchanged file alone, so that the target isn't recompiled for nothing.
    static func writeIfChanged(_ text: String, to path: String) throws {
        let data = Data(text.utf8)
        if FileManager.default.contents(atPath: path) == data { return }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    static func write(_ text: String, to handle: FileHandle) {
        guard !text.isEmpty else { return }
        handle.write(Data(text.utf8))
    }

    static func fail(_ message: String) -> Never {
        write(message + "\n", to: .standardError)
        exit(2)
    }
}
