import Foundation
import PartnerManifest
import Testing

/// Every manifest the repository ships must load cleanly.
@Suite struct ShippedManifestTests {
    /// `partners.d/` at the package root, found from this file's path.
    static let folder: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()
        .deletingLastPathComponent()
        .deletingLastPathComponent()
        .appendingPathComponent("partners.d")
        .path

    @Test func everyShippedManifestLoadsWithoutDiagnostics() throws {
        let set = ManifestLoader.load(paths: [Self.folder])
        #expect(set.diagnostics.map(\.description) == [])
        #expect(set.files.count >= 3)
        #expect(set.manifests.count == set.files.count)
    }

    @Test func everyShippedManifestStartsWithTheSchemaComment() throws {
        let set = ManifestLoader.load(paths: [Self.folder])
        for file in set.files {
            let text = try String(contentsOfFile: file, encoding: .utf8)
            #expect(
                text.hasPrefix("# yaml-language-server: $schema=../schemas/partner-manifest.schema.json\n"),
                "\(file)"
            )
        }
    }
}
