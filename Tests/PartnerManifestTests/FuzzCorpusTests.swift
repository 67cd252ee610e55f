import Foundation
import PartnerManifest
import PullSyncKernel
import Testing

/// Replays the manifest fuzzer's committed corpus (`Fuzz/Corpus/manifest/`, findings included)
/// with the fuzz target's invariants, so every finding stays a regression test in the normal suite.
@Suite("Fuzz corpus: manifests")
struct ManifestFuzzCorpusTests {
    static let folder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/Corpus/manifest")

    static var inputs: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).sorted()
    }

    @Test("The corpus is there")
    func corpusPresent() {
        #expect(Self.inputs.count >= 20)
    }

    @Test("Every input loads or is refused with positioned one-line diagnostics", arguments: inputs)
    func replay(_ name: String) throws {
        let bytes = Array(try Data(contentsOf: Self.folder.appendingPathComponent(name)))
        switch ManifestLoader.load(bytes: bytes, path: "fuzz.yaml") {
        case .success(let manifest):
            #expect(Partner.isValidID(manifest.id))
            if let partner = try? manifest.makePartner() { #expect(partner.id == manifest.id) }
        case .failure(let errors):
            #expect(!errors.diagnostics.isEmpty)
            for diagnostic in errors.diagnostics {
                #expect(diagnostic.line >= 1 && diagnostic.column >= 1)
                #expect(diagnostic.path == "fuzz.yaml" && !diagnostic.message.isEmpty)
                #expect(!diagnostic.description.contains("\n"), "\(diagnostic.description)")
            }
        }
    }
}
