import Foundation
import PartnerManifest
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `ManifestLoader.load(paths:)` on real files in a temporary folder.
@Suite struct LoadPathsTests {
    /// A fresh temporary folder, removed when the test ends.
    final class Folder {
        let path: String

        init() throws {
            path = NSTemporaryDirectory() + "manifest-tests-" + UUID().uuidString
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }

        deinit { try? FileManager.default.removeItem(atPath: path) }

        @discardableResult
        func write(_ name: String, _ text: String) throws -> String {
            let file = path + "/" + name
            try FileManager.default.createDirectory(
                atPath: (file as NSString).deletingLastPathComponent,
                withIntermediateDirectories: true
            )
            try Data(text.utf8).write(to: URL(fileURLWithPath: file))
            return file
        }
    }

    static func manifest(id: String, domain: String) -> String {
        """
        id: \(id)
        source_domain: \(domain)
        pull:
          url: https://sync.\(domain)/pull
          allowed_hosts: [sync.\(domain)]

        """
    }

    @Test func crossFileDuplicatesAreReportedAtTheLaterFile() throws {
        let folder = try Folder()
        try folder.write("a.yaml", Self.manifest(id: "acme", domain: "acme.example"))
        try folder.write("b.yml", Self.manifest(id: "acme", domain: "other.example"))
        try folder.write("c.yaml", Self.manifest(id: "charlie", domain: "Acme.Example."))
        try folder.write("d.yaml", Self.manifest(id: "delta", domain: "delta.example"))
        let set = ManifestLoader.load(paths: [folder.path])
        let dir = folder.path
        #expect(set.files == ["\(dir)/a.yaml", "\(dir)/b.yml", "\(dir)/c.yaml", "\(dir)/d.yaml"])
        #expect(set.manifests.map(\.id) == ["acme", "delta"])
        #expect(
            set.diagnostics.map(\.description) == [
                "\(dir)/b.yml:1:5: error: duplicate partner id 'acme'; already used at \(dir)/a.yaml:1:5",
                "\(dir)/c.yaml:2:16: error: duplicate source_domain 'acme.example'; already used at \(dir)/a.yaml:2:16",
            ]
        )
    }

    @Test func duplicatesOfAnInvalidFileAreStillReported() throws {
        let folder = try Folder()
        try folder.write("a.yaml", "id: acme\nsource_domain: acme.example\n")
        try folder.write("b.yaml", Self.manifest(id: "acme", domain: "b.example"))
        let set = ManifestLoader.load(paths: [folder.path])
        #expect(set.manifests.isEmpty)
        #expect(
            set.diagnostics.map(\.message) == [
                "missing required key 'pull'",
                "duplicate partner id 'acme'; already used at \(folder.path)/a.yaml:1:5",
            ]
        )
    }

    @Test func foldersContributeOnlyTheirOwnYAMLFilesSortedByName() throws {
        let folder = try Folder()
        try folder.write("zulu.yml", Self.manifest(id: "zulu", domain: "zulu.example"))
        try folder.write("Alpha.yaml", Self.manifest(id: "alpha", domain: "alpha.example"))
        try folder.write("mike.yaml", Self.manifest(id: "mike", domain: "mike.example"))
        try folder.write("notes.txt", "not a manifest")
        try folder.write("mike.yaml.bak", "not a manifest")
        try folder.write(".hidden.yaml", "not: a manifest")
        try folder.write("nested/inner.yaml", "not: read")
        try FileManager.default.createDirectory(atPath: folder.path + "/folder.yaml", withIntermediateDirectories: true)
        let set = ManifestLoader.load(paths: [folder.path + "/"])
        #expect(set.files == ["Alpha.yaml", "mike.yaml", "zulu.yml"].map { folder.path + "/" + $0 })
        #expect(set.diagnostics.isEmpty)
        #expect(set.manifests.map(\.id) == ["alpha", "mike", "zulu"])
        #expect(set.isValid)
    }

    @Test func everyFileIsCheckedAndDiagnosticsAreSorted() throws {
        let folder = try Folder()
        let b = try folder.write("b.yaml", "id: B\n")
        let a = try folder.write("a.yaml", "id: acme\nextra: 1\n")
        let set = ManifestLoader.load(paths: [b, a])
        #expect(set.files == [b, a])
        #expect(
            set.diagnostics.map(\.description) == [
                "\(a):1:1: error: missing required key 'pull'",
                "\(a):1:1: error: missing required key 'source_domain'",
                "\(a):2:1: error: unknown key 'extra'; valid keys: id, name, source_domain, pull, consent, eid, optout",
                "\(b):1:1: error: missing required key 'pull'",
                "\(b):1:1: error: missing required key 'source_domain'",
                "\(b):1:5: error: 'id' must be 1 to 32 characters of a-z, 0-9, '_' and '-'; found 'B'",
            ]
        )
    }

    @Test func aFileNamedTwiceIsExaminedOnce() throws {
        let folder = try Folder()
        let file = try folder.write("acme.yaml", Self.manifest(id: "acme", domain: "acme.example"))
        let set = ManifestLoader.load(paths: [folder.path, file, file])
        #expect(set.files == [file])
        #expect(set.diagnostics.isEmpty)
        #expect(set.manifests.map(\.id) == ["acme"])
    }

    @Test func missingPathIsADiagnosticNotACrash() {
        let set = ManifestLoader.load(paths: ["/nonexistent/partners.d/acme.yaml"])
        #expect(set.files == ["/nonexistent/partners.d/acme.yaml"])
        #expect(
            set.diagnostics.map(\.description) == [
                "/nonexistent/partners.d/acme.yaml:1:1: error: cannot read /nonexistent/partners.d/acme.yaml: "
                    + "No such file or directory"
            ]
        )
    }

    @Test func emptyFolderIsAnEmptySet() throws {
        let folder = try Folder()
        let set = ManifestLoader.load(paths: [folder.path])
        #expect(set.files.isEmpty)
        #expect(set.manifests.isEmpty)
        #expect(set.diagnostics.isEmpty)
    }

    @Test func hugeFileIsRefusedBySize() throws {
        let folder = try Folder()
        let file = try folder.write("big.yaml", String(repeating: "#", count: 2 * 1_048_576))
        let set = ManifestLoader.load(paths: [file])
        #expect(
            set.diagnostics.map(\.description) == [
                "\(file):1:1: error: manifest is 2097152 bytes; the limit is 1048576"
            ]
        )
    }

    @Test func fifoIsRefusedWithoutBlocking() throws {
        let folder = try Folder()
        let fifo = folder.path + "/pipe.yaml"
        try #require(mkfifo(fifo, 0o600) == 0)
        let set = ManifestLoader.load(paths: [folder.path])
        #expect(set.diagnostics.map(\.description) == ["\(fifo):1:1: error: cannot read \(fifo): not a regular file"])
    }

    @Test func brokenSymlinkIsADiagnostic() throws {
        let folder = try Folder()
        let link = folder.path + "/gone.yaml"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: folder.path + "/nowhere")
        let set = ManifestLoader.load(paths: [folder.path])
        #expect(
            set.diagnostics.map(\.description) == ["\(link):1:1: error: cannot read \(link): No such file or directory"]
        )
    }

    @Test func symlinkToAManifestIsRead() throws {
        let folder = try Folder()
        let target = try folder.write("real/acme.txt", Self.manifest(id: "acme", domain: "acme.example"))
        try FileManager.default.createSymbolicLink(atPath: folder.path + "/acme.yaml", withDestinationPath: target)
        let set = ManifestLoader.load(paths: [folder.path])
        #expect(set.manifests.map(\.id) == ["acme"])
        #expect(set.manifests.first?.path == folder.path + "/acme.yaml")
    }

    @Test func binaryFileAmongGoodOnes() throws {
        let folder = try Folder()
        try folder.write("a.yaml", Self.manifest(id: "acme", domain: "acme.example"))
        let png = folder.path + "/logo.yaml"
        try Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]).write(to: URL(fileURLWithPath: png))
        let set = ManifestLoader.load(paths: [folder.path])
        #expect(set.manifests.map(\.id) == ["acme"])
        #expect(
            set.diagnostics.map(\.description) == [
                "\(png):1:1: error: manifest is not UTF-8 text (byte 0x89 is invalid here); is this a binary file?"
            ]
        )
    }
}
