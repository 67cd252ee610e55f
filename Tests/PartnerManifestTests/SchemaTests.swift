import Foundation
import PartnerAdapterKit
import PullSyncKernel
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
        ([String](), ManifestKeys.names(under: nil)),
        (["pull"], ManifestKeys.names(under: "pull")),
        (["pull", "auth"], ManifestKeys.names(under: "pull.auth")),
        (["pull", "auth", "bearer"], ManifestKeys.secretReferenceKeys),
        (["pull", "response"], ManifestKeys.names(under: "pull.response")),
        (["pull", "rate_limit"], ManifestKeys.names(under: "pull.rate_limit")),
        (["consent"], ManifestKeys.names(under: "consent")),
        (["eid"], ManifestKeys.names(under: "eid")),
    ])
    func schemaAndLoaderAgreeOnKeys(path: [String], loaderKeys: [String]) throws {
        #expect(try keys(schema(), path) == loaderKeys.sorted())
    }

    /// The schema at a dotted key path, `$ref`s followed.
    static func property(_ path: String, in schema: JSON) throws -> JSON {
        var current = schema
        for name in path.split(separator: ".") {
            current = try #require(current["properties"]?[String(name)], "no \(name) in the schema at \(path)")
        }
        return current
    }

    static func resolved(_ node: JSON, in schema: JSON) throws -> JSON {
        guard let reference = node["$ref"]?.string else { return node }
        let name = try #require(reference.split(separator: "/").last.map(String.init))
        return try #require(schema["$defs"]?[name])
    }

    /// Each key of the loader's table has the schema type of its value type, and is required
    /// in the schema exactly when the table says.
    @Test(arguments: ManifestKeys.all)
    func schemaFollowsTheKeyTable(key: ManifestKeys.Key) throws {
        let schema = try SchemaInstanceTests.schema()
        let property = try Self.property(key.path, in: schema)
        let value = try Self.resolved(property, in: schema)
        switch key.type {
        case .string:
            #expect(value["type"] == .string("string") || value["enum"]?.array?.allSatisfy { $0.string != nil } == true)
        case .boolean: #expect(value["type"] == .string("boolean"))
        case .integer: #expect(value["type"] == .string("integer"))
        case .number: #expect(value["type"] == .string("number"))
        case .duration: #expect(property["$ref"] == .string("#/$defs/duration"))
        case .secretReference: #expect(property["$ref"] == .string("#/$defs/secretReference"))
        case .mapping: #expect(value["type"] == .string("object"))
        case .templates:
            #expect(value["type"] == .string("object"))
            #expect(value["additionalProperties"]?["$ref"] == .string("#/$defs/template"))
        case .listOfStrings:
            #expect(value["type"] == .string("array"))
            #expect(value["items"]?["type"] == .string("string"))
        case .listOfIntegers:
            #expect(value["type"] == .string("array"))
            #expect(value["items"]?["type"] == .string("integer"))
        }
        let parentPath = key.path.split(separator: ".").dropLast().joined(separator: ".")
        let parent = parentPath.isEmpty ? schema : try Self.property(parentPath, in: schema)
        let required = parent["required"]?.array?.compactMap(\.string) ?? []
        let name = String(key.path.split(separator: ".").last ?? "")
        #expect(required.contains(name) == key.required, "required")
    }

    @Test func theSecretReferenceKeysAreTheTables() throws {
        let reference = try #require(SchemaInstanceTests.schema()["$defs"]?["secretReference"])
        let keys = (reference["properties"]?.object?.keys).map { Array($0).sorted() }
        #expect(keys == ManifestKeys.secretReferenceKeys.sorted())
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

/// The schema and the compiled adapters' descriptors agree, and every manifest the repository
/// ships (and documents) is valid against the schema, checked here in Swift.
@Suite struct SchemaInstanceTests {
    static let root = SchemaTests.schemaURL.deletingLastPathComponent().deletingLastPathComponent()

    static func schema() throws -> JSON {
        try JSONDecoder().decode(JSON.self, from: Data(contentsOf: SchemaTests.schemaURL))
    }

    static func validator() throws -> JSONSchemaValidator {
        try JSONSchemaValidator(schema: schema())
    }

    /// The `$defs` schema a manifest naming `adapter` validates its `params` against.
    static func paramsSchema(for adapter: String) throws -> JSON {
        let schema = try schema()
        let rules = try #require(schema["properties"]?["pull"]?["allOf"]?.array)
        let rule = try #require(
            rules.first { $0["if"]?["properties"]?["adapter"]?["const"] == .string(adapter) },
            "no if/then rule for adapter \(adapter)"
        )
        let reference = try #require(rule["then"]?["properties"]?["params"]?["$ref"]?.string)
        #expect(rule["then"]?["required"] == .array([.string("params")]))
        let name = try #require(reference.split(separator: "/").last.map(String.init))
        return try #require(schema["$defs"]?[name])
    }

    @Test func theSchemaNamesExactlyTheBuiltInAdapters() throws {
        let names = try #require(Self.schema()["properties"]?["pull"]?["properties"]?["adapter"]?["enum"]?.array)
        #expect(names.compactMap(\.string) == AdapterDescriptor.builtIn.map(\.name))
    }

    @Test(arguments: AdapterDescriptor.builtIn)
    func paramsAgreeWithTheDescriptor(descriptor: AdapterDescriptor) throws {
        let params = try Self.paramsSchema(for: descriptor.name)
        #expect(params["additionalProperties"] == .bool(false))
        let properties = try #require(params["properties"]?.object)
        #expect(properties.keys.sorted() == descriptor.parameters.map(\.name).sorted())
        let required = descriptor.parameters.filter { $0.requirement == .required }.map(\.name)
        #expect(params["required"]?.array?.compactMap(\.string).sorted() == required.sorted())
        for parameter in descriptor.parameters {
            let property = try #require(properties[parameter.name])
            switch parameter.kind {
            case .text:
                #expect(property["type"] == .string("string"), "\(parameter.name)")
            case .integer(let range):
                #expect(property["type"] == .string("integer"), "\(parameter.name)")
                #expect(property["minimum"] == .integer(range.lowerBound), "\(parameter.name)")
                #expect(property["maximum"] == .integer(range.upperBound), "\(parameter.name)")
            case .boolean:
                #expect(property["type"] == .string("boolean"), "\(parameter.name)")
            case .duration:
                #expect(property["$ref"] == .string("#/$defs/duration"), "\(parameter.name)")
            case .secret:
                #expect(property["$ref"] == .string("#/$defs/secretReference"), "\(parameter.name)")
            case .headerName:
                #expect(property["pattern"] != nil, "\(parameter.name)")
            case .fieldPath:
                #expect(property["$ref"] == .string("#/$defs/fieldPath"), "\(parameter.name)")
            case .choice(let words):
                #expect(property["enum"] == .array(words.map(JSON.string)), "\(parameter.name)")
            }
        }
    }

    /// The manifest files the repository ships: `partners.d/`, the example consumer's
    /// `partners.d/` and the fixture-only partners' manifests.
    static func manifestFiles() throws -> [URL] {
        let manager = FileManager.default
        func yaml(in folder: URL) throws -> [URL] {
            try manager.contentsOfDirectory(atPath: folder.path)
                .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }
                .sorted()
                .map { folder.appendingPathComponent($0) }
        }
        var files = try yaml(in: root.appendingPathComponent("partners.d"))
        let examples = root.appendingPathComponent("Examples")
        for example in try manager.contentsOfDirectory(atPath: examples.path).sorted() {
            files += try yaml(in: examples.appendingPathComponent(example).appendingPathComponent("partners.d"))
        }
        let fixtures = root.appendingPathComponent("Tests/PullSyncAdaptersTests/Fixtures")
        for partner in try manager.contentsOfDirectory(atPath: fixtures.path).sorted() {
            let manifest = fixtures.appendingPathComponent(partner).appendingPathComponent("manifest.yaml")
            if manager.fileExists(atPath: manifest.path) { files.append(manifest) }
        }
        return files
    }

    /// Each shipped manifest's first line points editors at the schema, by a path that resolves
    /// to it from the manifest's folder.
    @Test func everyShippedManifestReferencesTheSchema() throws {
        let files = try Self.manifestFiles()
        #expect(files.count >= 8)
        let prefix = "# yaml-language-server: $schema="
        for file in files {
            let text = try String(contentsOf: file, encoding: .utf8)
            let firstLine = String(text.prefix { $0 != "\n" })
            #expect(firstLine.hasPrefix(prefix), "\(file.path)")
            let target = file.deletingLastPathComponent().appendingPathComponent(
                String(firstLine.dropFirst(prefix.count))
            )
            #expect(target.standardizedFileURL.path == SchemaTests.schemaURL.standardizedFileURL.path, "\(file.path)")
        }
    }

    /// Every shipped manifest file, and every example manifest in the docs.
    static func shippedManifests() throws -> [(name: String, text: String)] {
        var manifests = try manifestFiles().map { ($0.path, try String(contentsOf: $0, encoding: .utf8)) }
        let documented = DocumentationTests.blocks("yaml").filter {
            $0.contains("source_domain:") && !$0.contains("tiemout")
        }
        manifests += documented.enumerated().map { ("docs/manifest-format.md example \($0.offset + 1)", $0.element) }
        return manifests
    }

    @Test func everyShippedManifestIsValidAgainstTheSchema() throws {
        let validator = try Self.validator()
        let manifests = try Self.shippedManifests()
        #expect(manifests.count >= 10)
        #expect(manifests.contains { $0.text.contains("adapter: signed-get") })
        #expect(manifests.contains { $0.text.contains("adapter: json-post") })
        for manifest in manifests {
            #expect(validator.errors(try JSON(yaml: manifest.text)) == [], "\(manifest.name)")
        }
    }

    /// Mistakes the loader refuses, which the schema must refuse too (so editors flag them as
    /// people type). Each is the base manifest plus the lines given.
    @Test(arguments: [
        ("an unknown key", "  tiemout: 1s\n"),
        ("an unknown adapter", "  adapter: signed-got\n  params: { key_id: k, secret: { env: K } }\n"),
        ("params without an adapter", "  params: { key_id: k }\n"),
        (
            "an adapter with query",
            "  adapter: signed-get\n  params: { key_id: k, secret: { env: K } }\n  query: { a: b }\n"
        ),
        ("an adapter with auth", "  adapter: json-post\n  params: { account_id: a }\n  auth: { bearer: { env: K } }\n"),
        ("an adapter without params", "  adapter: signed-get\n"),
        ("a missing required parameter", "  adapter: signed-get\n  params: { secret: { env: K } }\n"),
        ("an unknown parameter", "  adapter: json-post\n  params: { account_id: a, acount: b }\n"),
        ("a literal secret", "  adapter: signed-get\n  params: { key_id: k, secret: hunter2 }\n"),
        ("a wrong choice", "  adapter: json-post\n  params: { account_id: a, expiry_format: iso8601 }\n"),
        ("a wrong duration", "  adapter: json-post\n  params: { account_id: a, max_expiry: forever }\n"),
        ("a wrong boolean", "  adapter: json-post\n  params: { account_id: a, send_consent: yes }\n"),
        ("an empty field path", "  adapter: json-post\n  params: { account_id: a, uid_field: data..uid }\n"),
        (
            "a bad header name",
            "  adapter: signed-get\n  params: { key_id: k, secret: { env: K }, signature_header: X Sig }\n"
        ),
    ])
    func theSchemaRefusesWhatTheLoaderRefuses(mistake: String, lines: String) throws {
        let text = ManifestFixtures.base + lines
        #expect(!ManifestFixtures.diagnostics(text).isEmpty, "the loader accepts \(mistake)")
        #expect(try !Self.validator().errors(JSON(yaml: text)).isEmpty, "the schema accepts \(mistake)")
    }

    @Test func theValidatorRefusesKeywordsItDoesNotImplement() throws {
        let schema = try JSONDecoder().decode(JSON.self, from: Data(#"{"properties": {"a": {"format": "uri"}}}"#.utf8))
        #expect(throws: JSONSchemaValidator.UnknownKeyword.self) { try JSONSchemaValidator(schema: schema) }
    }
}
