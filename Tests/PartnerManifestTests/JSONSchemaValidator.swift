import Foundation

@testable import PartnerManifest
import StrictYAML

/// A JSON value: a parsed schema, or a manifest read as JSON.
indirect enum JSON: Equatable, Decodable, CustomStringConvertible {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case array([JSON])
    case object([String: JSON])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSON].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSON].self))
        }
    }

    /// A manifest's YAML as the JSON an editor's YAML language server validates: scalars read
    /// with the loader's own rules (YAML 1.2 core), keys as strings.
    init(yaml: String) throws {
        switch YAMLReader.read(Array(yaml.utf8), maxBytes: ManifestLoader.maxBytes) {
        case .document(let node, _): self = JSON(node: node)
        case .failed(let problems): throw YAMLProblems(messages: problems.map(\.manifestMessage))
        }
    }

    /// Why a text is not one YAML document the reader accepts.
    struct YAMLProblems: Error {
        var messages: [String]
    }

    init(node: Node) {
        switch node.content {
        case .scalar(let string, let style):
            switch ScalarMeaning(string, style: style) {
            case .null: self = .null
            case .bool(let value): self = .bool(value)
            case .integer(let value): self = .integer(value)
            case .number(let value): self = .number(value)
            case .text(let value): self = .string(value)
            }
        case .list(let elements):
            self = .array(elements.map(JSON.init(node:)))
        case .mapping(let pairs):
            var members: [String: JSON] = [:]
            for pair in pairs {
                guard case .scalar(let key, _) = pair.key.content else { continue }
                members[key] = JSON(node: pair.value)
            }
            self = .object(members)
        }
    }

    subscript(key: String) -> JSON? {
        if case .object(let members) = self { members[key] } else { nil }
    }

    var string: String? { if case .string(let value) = self { value } else { nil } }
    var array: [JSON]? { if case .array(let value) = self { value } else { nil } }
    var object: [String: JSON]? { if case .object(let value) = self { value } else { nil } }
    var double: Double? {
        switch self {
        case .integer(let value): Double(value)
        case .number(let value): value
        default: nil
        }
    }

    var description: String {
        switch self {
        case .null: "null"
        case .bool(let value): "\(value)"
        case .integer(let value): "\(value)"
        case .number(let value): "\(value)"
        case .string(let value): "\"\(value)\""
        case .array(let value): "[\(value.map(\.description).joined(separator: ", "))]"
        case .object(let value): "{\(value.keys.sorted().joined(separator: ", "))}"
        }
    }
}

/// Validates instances against the subset of JSON Schema 2020-12 that
/// `schemas/partner-manifest.schema.json` uses. A keyword it doesn't know is an error, not
/// ignored, so the schema can't quietly outgrow it. (CI also runs Python's jsonschema when present.)
struct JSONSchemaValidator {
    /// Keywords that only annotate.
    static let annotations: Set<String> = ["$schema", "$id", "title", "description", "$defs"]
    /// Keywords this validator applies.
    static let assertions: Set<String> = [
        "$ref", "type", "properties", "additionalProperties", "required", "enum", "const", "not", "anyOf", "allOf",
        "oneOf", "if", "then", "else", "pattern", "minLength", "minimum", "maximum", "exclusiveMinimum", "items",
        "minItems", "uniqueItems", "minProperties", "maxProperties", "propertyNames", "dependentRequired",
        "dependentSchemas",
    ]

    struct UnknownKeyword: Error, CustomStringConvertible {
        var keyword: String
        var description: String { "the schema uses '\(keyword)', which this validator does not implement" }
    }

    let root: JSON

    init(schema: JSON) throws {
        self.root = schema
        try Self.checkKeywords(schema)
    }

    /// Every keyword in every subschema is known.
    private static func checkKeywords(_ schema: JSON) throws {
        guard case .object(let members) = schema else { return }
        for (keyword, value) in members {
            guard annotations.contains(keyword) || assertions.contains(keyword) else {
                throw UnknownKeyword(keyword: keyword)
            }
            switch keyword {
            case "properties", "$defs", "dependentSchemas":
                for subschema in value.object?.values.map({ $0 }) ?? [] { try checkKeywords(subschema) }
            case "allOf", "anyOf", "oneOf":
                for subschema in value.array ?? [] { try checkKeywords(subschema) }
            case "not", "if", "then", "else", "items", "propertyNames", "additionalProperties":
                try checkKeywords(value)
            default:
                continue
            }
        }
    }

    /// Every failure, as `path: message`; empty when `instance` is valid.
    func errors(_ instance: JSON) -> [String] {
        var errors: [String] = []
        validate(instance, against: root, at: "$", into: &errors)
        return errors
    }

    private func resolve(_ reference: String) -> JSON? {
        guard reference.hasPrefix("#/") else { return nil }
        var current: JSON? = root
        for token in reference.dropFirst(2).split(separator: "/") {
            let key = token.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            current = current?[key]
        }
        return current
    }

    private func isValid(_ instance: JSON, against schema: JSON) -> Bool {
        var errors: [String] = []
        validate(instance, against: schema, at: "$", into: &errors)
        return errors.isEmpty
    }

    private func validate(_ instance: JSON, against schema: JSON, at path: String, into errors: inout [String]) {
        if case .bool(let allowed) = schema {
            if !allowed { errors.append("\(path): not allowed") }
            return
        }
        guard case .object(let keywords) = schema else { return }
        if let reference = keywords["$ref"]?.string {
            guard let target = resolve(reference) else {
                errors.append("\(path): unresolvable $ref \(reference)")
                return
            }
            validate(instance, against: target, at: path, into: &errors)
        }
        if let type = keywords["type"] {
            let names = type.array?.compactMap(\.string) ?? [type.string].compactMap { $0 }
            if !names.contains(where: { Self.has(instance, type: $0) }) {
                errors.append("\(path): \(instance) is not of type \(names.joined(separator: " or "))")
            }
        }
        if let values = keywords["enum"]?.array, !values.contains(instance) {
            errors.append("\(path): \(instance) is not one of \(values)")
        }
        if let value = keywords["const"], value != instance {
            errors.append("\(path): \(instance) is not \(value)")
        }
        if let subschema = keywords["not"], isValid(instance, against: subschema) {
            errors.append("\(path): \(instance) matches a schema it must not")
        }
        if let subschemas = keywords["allOf"]?.array {
            for subschema in subschemas { validate(instance, against: subschema, at: path, into: &errors) }
        }
        if let subschemas = keywords["anyOf"]?.array, !subschemas.contains(where: { isValid(instance, against: $0) }) {
            errors.append("\(path): \(instance) matches none of anyOf")
        }
        if let subschemas = keywords["oneOf"]?.array {
            let matches = subschemas.filter { isValid(instance, against: $0) }.count
            if matches != 1 { errors.append("\(path): \(instance) matches \(matches) of oneOf, not 1") }
        }
        if let condition = keywords["if"] {
            if isValid(instance, against: condition) {
                if let then = keywords["then"] { validate(instance, against: then, at: path, into: &errors) }
            } else if let otherwise = keywords["else"] {
                validate(instance, against: otherwise, at: path, into: &errors)
            }
        }
        switch instance {
        case .string(let string):
            validateString(string, keywords, at: path, into: &errors)
        case .integer, .number:
            validateNumber(instance.double ?? 0, keywords, at: path, into: &errors)
        case .array(let elements):
            validateArray(elements, keywords, at: path, into: &errors)
        case .object(let members):
            validateObject(members, keywords, at: path, into: &errors)
        case .null, .bool:
            break
        }
    }

    private static func has(_ instance: JSON, type: String) -> Bool {
        switch (type, instance) {
        case ("null", .null), ("boolean", .bool), ("string", .string), ("array", .array), ("object", .object),
            ("integer", .integer), ("number", .integer), ("number", .number):
            true
        case ("integer", .number(let value)):
            value == value.rounded()
        default:
            false
        }
    }

    private func validateString(
        _ string: String,
        _ keywords: [String: JSON],
        at path: String,
        into errors: inout [String]
    ) {
        if let pattern = keywords["pattern"]?.string {
            do {
                if try Regex(pattern).firstMatch(in: string) == nil {
                    errors.append("\(path): \"\(string)\" does not match \(pattern)")
                }
            } catch {
                errors.append("\(path): pattern \(pattern) does not compile: \(error)")
            }
        }
        if let minimum = keywords["minLength"]?.double, Double(string.unicodeScalars.count) < minimum {
            errors.append("\(path): \"\(string)\" is shorter than \(minimum)")
        }
    }

    private func validateNumber(
        _ number: Double,
        _ keywords: [String: JSON],
        at path: String,
        into errors: inout [String]
    ) {
        if let minimum = keywords["minimum"]?.double, number < minimum {
            errors.append("\(path): \(number) is less than \(minimum)")
        }
        if let maximum = keywords["maximum"]?.double, number > maximum {
            errors.append("\(path): \(number) is more than \(maximum)")
        }
        if let bound = keywords["exclusiveMinimum"]?.double, number <= bound {
            errors.append("\(path): \(number) is not more than \(bound)")
        }
    }

    private func validateArray(
        _ elements: [JSON],
        _ keywords: [String: JSON],
        at path: String,
        into errors: inout [String]
    ) {
        if let minimum = keywords["minItems"]?.double, Double(elements.count) < minimum {
            errors.append("\(path): fewer than \(minimum) items")
        }
        if keywords["uniqueItems"] == .bool(true) {
            for (index, element) in elements.enumerated() where elements[..<index].contains(element) {
                errors.append("\(path)[\(index)]: repeats \(element)")
            }
        }
        if let items = keywords["items"] {
            for (index, element) in elements.enumerated() {
                validate(element, against: items, at: "\(path)[\(index)]", into: &errors)
            }
        }
    }

    private func validateObject(
        _ members: [String: JSON],
        _ keywords: [String: JSON],
        at path: String,
        into errors: inout [String]
    ) {
        let properties = keywords["properties"]?.object ?? [:]
        for (key, value) in members.sorted(by: { $0.key < $1.key }) {
            if let subschema = properties[key] {
                validate(value, against: subschema, at: "\(path).\(key)", into: &errors)
            } else if let additional = keywords["additionalProperties"] {
                if additional == .bool(false) {
                    errors.append("\(path): unknown key '\(key)'")
                } else {
                    validate(value, against: additional, at: "\(path).\(key)", into: &errors)
                }
            }
            if let names = keywords["propertyNames"] {
                validate(.string(key), against: names, at: "\(path) key '\(key)'", into: &errors)
            }
        }
        for required in keywords["required"]?.array?.compactMap(\.string) ?? [] where members[required] == nil {
            errors.append("\(path): missing required key '\(required)'")
        }
        if let minimum = keywords["minProperties"]?.double, Double(members.count) < minimum {
            errors.append("\(path): fewer than \(minimum) keys")
        }
        if let maximum = keywords["maxProperties"]?.double, Double(members.count) > maximum {
            errors.append("\(path): more than \(maximum) keys")
        }
        for (key, needed) in keywords["dependentRequired"]?.object ?? [:] where members[key] != nil {
            for other in needed.array?.compactMap(\.string) ?? [] where members[other] == nil {
                errors.append("\(path): '\(key)' needs '\(other)'")
            }
        }
        for (key, subschema) in keywords["dependentSchemas"]?.object ?? [:] where members[key] != nil {
            validate(.object(members), against: subschema, at: path, into: &errors)
        }
    }
}
