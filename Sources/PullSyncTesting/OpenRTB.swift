public import Foundation

/// OpenRTB 2.6's `EID` and `UID` objects as an independent reader sees them: parsed with
/// `JSONSerialization`, every field checked against the specification's definitions (3.2.27,
/// 3.2.28): `source` a string, `uids` a non-empty array, `id` a string, `atype` an integer (1-3,
/// or 500 and up for vendor values), `mm` an integer 0-5, `inserter` and `matcher` strings, and
/// nothing else but `ext`.
public enum OpenRTB {
    /// A `UID` object.
    public struct UID: Equatable, Sendable {
        /// `id`: the identifier.
        public var id: String
        /// `atype`: the agent type.
        public var atype: Int

        /// A UID object with these fields.
        public init(id: String, atype: Int) {
            self.id = id
            self.atype = atype
        }
    }

    /// An `EID` object.
    public struct EIDObject: Equatable, Sendable {
        /// `source`.
        public var source: String
        /// `uids`.
        public var uids: [UID]
        /// `inserter`, if present.
        public var inserter: String?
        /// `mm`, if present.
        public var mm: Int?

        /// An EID object with these fields.
        public init(source: String, uids: [UID], inserter: String? = nil, mm: Int? = nil) {
            self.source = source
            self.uids = uids
            self.inserter = inserter
            self.mm = mm
        }
    }

    /// A field that breaks the specification.
    public struct Violation: Error, CustomStringConvertible {
        public var description: String
    }

    /// The `user.eids` array in `json`, checked field by field.
    public static func eids(from json: Data) throws -> [EIDObject] {
        guard let array = try JSONSerialization.jsonObject(with: json) as? [Any] else {
            throw Violation(description: "user.eids is not an array")
        }
        return try array.map(eid)
    }

    private static func integer(_ value: Any?) -> Int? {
        // JSONSerialization gives numbers as NSNumber; a boolean (objCType `c`) or a fraction is
        // not an integer. (`is Bool` is true for the integer 1 too.)
        guard let number = value as? NSNumber, String(cString: number.objCType) != "c",
            number.doubleValue == Double(number.intValue)
        else { return nil }
        return number.intValue
    }

    /// The array in a `pullsync serve --eids-header` value: base64url without padding, decoded here
    /// by hand rather than by the product's own decoder.
    public static func eids(fromHeader value: String) throws -> [EIDObject] {
        var base64 = value.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        guard !value.contains("="), !value.contains("+"), !value.contains("/") else {
            throw Violation(description: "not base64url without padding: \(value)")
        }
        while base64.utf8.count % 4 != 0 { base64 += "=" }
        guard let json = Data(base64Encoded: base64) else { throw Violation(description: "not base64: \(value)") }
        return try eids(from: json)
    }

    private static func eid(_ value: Any) throws -> EIDObject {
        guard let object = value as? [String: Any] else { throw Violation(description: "an EID is not an object") }
        let unknown = Set(object.keys).subtracting(["source", "uids", "inserter", "matcher", "mm", "ext"])
        guard unknown.isEmpty else { throw Violation(description: "EID fields not in OpenRTB 2.6: \(unknown)") }
        guard let source = object["source"] as? String, !source.isEmpty else {
            throw Violation(description: "EID.source must be a non-empty string")
        }
        guard let uids = object["uids"] as? [Any], !uids.isEmpty else {
            throw Violation(description: "EID.uids must be a non-empty array")
        }
        if let inserter = object["inserter"], !(inserter is String) {
            throw Violation(description: "EID.inserter must be a string")
        }
        var mm: Int?
        if let value = object["mm"] {
            guard let match = integer(value), (0...5).contains(match) else {
                throw Violation(description: "EID.mm must be an integer 0-5")
            }
            mm = match
        }
        return EIDObject(source: source, uids: try uids.map(uid), inserter: object["inserter"] as? String, mm: mm)
    }

    private static func uid(_ value: Any) throws -> UID {
        guard let object = value as? [String: Any] else { throw Violation(description: "a UID is not an object") }
        let unknown = Set(object.keys).subtracting(["id", "atype", "ext"])
        guard unknown.isEmpty else { throw Violation(description: "UID fields not in OpenRTB 2.6: \(unknown)") }
        guard let id = object["id"] as? String, !id.isEmpty else {
            throw Violation(description: "UID.id must be a non-empty string")
        }
        guard let atype = integer(object["atype"]), (1...3).contains(atype) || atype >= 500 else {
            throw Violation(description: "UID.atype must be 1, 2, 3 or a vendor value of 500 or more")
        }
        return UID(id: id, atype: atype)
    }
}
