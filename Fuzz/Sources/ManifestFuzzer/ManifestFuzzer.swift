import FuzzDriver
import PartnerManifest
import PullSyncKernel


/// libFuzzer's entry: one manifest's bytes. Crashes, hangs (`-timeout`) and broken invariants
/// (a trap) are findings; `Tests/PartnerManifestTests/FuzzCorpusTests.swift` replays the corpus.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzManifest(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    switch ManifestLoader.load(bytes: bytes, path: "fuzz.yaml") {
    case .success(let manifest):
        // A manifest that loads names a valid partner, and builds one (or refuses, as a value).
        precondition(Partner.isValidID(manifest.id), "a loaded manifest has an invalid id")
        if let partner = try? manifest.makePartner() {
            precondition(partner.id == manifest.id)
        }
    case .failure(let errors):
        precondition(!errors.diagnostics.isEmpty, "a refused manifest has no diagnostic")
        for diagnostic in errors.diagnostics {
            precondition(diagnostic.line >= 1 && diagnostic.column >= 1, "a diagnostic without a position")
            precondition(diagnostic.path == "fuzz.yaml" && !diagnostic.message.isEmpty)
            // One line per diagnostic: an editor reads `path:line:column: error: message`.
            precondition(!diagnostic.description.contains("\n"), "a diagnostic spans lines")
        }
    }
    return 0
}

@main
enum ManifestFuzzerMain {
    static func main() { runLibFuzzer { fuzzManifest($0, $1) } }
}
