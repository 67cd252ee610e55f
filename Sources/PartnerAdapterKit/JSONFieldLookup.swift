#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The value at a path of object keys in a JSON object, read without building the rest of the
/// document: the decoder still checks that all of it is valid JSON, but makes no value of any
/// member off the path (a partner's answer is read for one field on every call).
struct JSONFieldLookup: DecodableWithConfiguration {
    enum Found: Equatable {
        /// A step of the path is missing or not an object.
        case missing
        case null
        case string(String)
        /// A number, a Boolean, an array or an object (the document itself, for an empty path).
        case other
    }

    var found: Found

    /// The field at `path` in `bytes`, or `nil` when they are not one valid JSON document or the
    /// document is not an object.
    static func find(_ path: [String], in bytes: [UInt8]) -> Found? {
        try? decoder.decode(Self.self, from: Data(bytes), configuration: path).found
    }

    // A decoder holds no state between documents and may be shared across threads.
    private static let decoder = JSONDecoder()

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(from decoder: any Decoder, configuration path: [String]) throws {
        // Throws when the document is not an object.
        var container = try decoder.container(keyedBy: Key.self)
        guard let last = path.last else {
            found = .other
            return
        }
        for step in path.dropLast() {
            let key = Key(stringValue: step)
            // `contains` first: a failed attempt throws, and a decoding error is costly.
            guard container.contains(key), (try? container.decodeNil(forKey: key)) == false,
                let next = try? container.nestedContainer(keyedBy: Key.self, forKey: key)
            else {
                found = .missing
                return
            }
            container = next
        }
        let key = Key(stringValue: last)
        if !container.contains(key) {
            found = .missing
        } else if try container.decodeNil(forKey: key) {
            found = .null
        } else if let value = try? container.decode(String.self, forKey: key) {
            found = .string(value)
        } else {
            found = .other
        }
    }
}
