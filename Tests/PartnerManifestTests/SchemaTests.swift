import Foundation
import Testing

@testable import PartnerManifest

/// The JSON Schema that editors use must know exactly the keys the loader accepts.
@Suite struct SchemaTests {
    static let schemaURL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("schemas/partner-manifest.schema.json")

    func schema() throws -> [String: Any] {
        let data = try Data(contentsOf: Self.schemaURL)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    func keys(_ object: [String: Any], _ path: [String]) throws -> [String] {
        var current = object
        for key in path {
            let properties = try #require(current["properties"] as? [String: Any], "no properties at \(path)")
            current = try #require(properties[key] as? [String: Any], "no \(key) at \(path)")
        }
        if let reference = current["$ref"] as? String {
            let name = try #require(reference.split(separator: "/").last.map(String.init))
            let definitions = try #require(object["$defs"] as? [String: Any])
            current = try #require(definitions[name] as? [String: Any])
        }
        let properties = try #require(current["properties"] as? [String: Any], "no properties under \(path)")
        #expect(current["additionalProperties"] as? Bool == false, "\(path) must refuse unknown keys")
        return properties.keys.sorted()
    }

    @Test(arguments: [
        ([String](), ManifestValidator.topLevelKeys),
        (["pull"], ManifestValidator.pullKeys),
        (["pull", "auth"], ManifestValidator.authKeys),
        (["pull", "auth", "bearer"], ManifestValidator.referenceKeys),
        (["pull", "response"], ManifestValidator.responseKeys),
        (["pull", "rate_limit"], ManifestValidator.rateLimitKeys),
        (["consent"], ManifestValidator.consentKeys),
    ])
    func schemaAndLoaderAgreeOnKeys(path: [String], loaderKeys: [String]) throws {
        #expect(try keys(schema(), path) == loaderKeys.sorted())
    }

    @Test func everyShippedManifestPointsAtTheSchema() throws {
        let folder = Self.schemaURL.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("partners.d")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }
        #expect(!files.isEmpty)
        for file in files {
            let text = try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
            #expect(
                text.hasPrefix("# yaml-language-server: $schema=../schemas/partner-manifest.schema.json\n"),
                "\(file)"
            )
        }
        #expect(FileManager.default.fileExists(atPath: Self.schemaURL.path))
    }
}
