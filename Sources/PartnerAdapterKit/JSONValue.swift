#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A parsed JSON document, for adapters that pick one field out of a partner's answer.
public enum JSONValue: Sendable, Hashable, Decodable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        // Each failed attempt throws (and a decoding error is costly), so the kinds a partner's
        // answer is made of come first: a UID is a string inside an object.
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([String: JSONValue].self) {
            self = .object(value)
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else {
            self = .array(try container.decode([JSONValue].self))
        }
    }

    /// Parses `bytes`; `nil` when they are not one valid JSON document.
    public static func parse(_ bytes: [UInt8]) -> JSONValue? {
        try? decoder.decode(JSONValue.self, from: Data(bytes))
    }

    /// Parses `bytes` as a JSON object: the members, or `nil` when they are not one valid JSON
    /// document or the document is not an object. Cheaper than ``parse(_:)`` for an answer
    /// that must be an object.
    public static func parseObject(_ bytes: [UInt8]) -> [String: JSONValue]? {
        try? decoder.decode([String: JSONValue].self, from: Data(bytes))
    }

    // A decoder holds no state between documents and may be shared across threads.
    private static let decoder = JSONDecoder()

    /// The value at `path` (object keys), or `nil` when a step is missing or not an object.
    public func value(at path: [String]) -> JSONValue? {
        var current = self
        for key in path {
            guard case .object(let members) = current, let next = members[key] else { return nil }
            current = next
        }
        return current
    }
}
