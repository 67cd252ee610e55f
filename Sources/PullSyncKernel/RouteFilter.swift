/// Decides which request paths are organic (pages and proxied content) and so may
/// trigger pull sync.
///
/// An excluded entry `"/sync"` excludes `/sync` and everything under `/sync/`; an entry
/// ending in `/*` (`"/admin/*"`) excludes everything under that prefix. Paths are compared
/// the way routers see them, and erring on the side of exclusion: the query string is
/// ignored, percent-escapes are decoded, repeated slashes collapsed, `.` and `..` segments
/// resolved, and letters compared case-insensitively, so `//sync`, `/SYNC` and
/// `/news/../sync` are all excluded.
public struct RouteFilter: Sendable, Hashable {
    /// The excluded entries as given.
    public let excluded: [String]
    private let prefixes: [String]
    private let exact: Set<String>
    /// ``exact`` and ``prefixes`` as bytes, for the fast path: compared in place with a path's
    /// contiguous UTF-8 (a `String`'s views step an index per byte).
    private let exactBytes: [[UInt8]]
    private let prefixBytes: [[UInt8]]

    /// The spec's default exclusions: `/sync`, `/identify`, `/auction`, `/admin/*`, `/_pullsync/*`.
    public static let defaultExcluded = ["/sync", "/identify", "/auction", "/admin/*", "/_pullsync/*"]

    /// Creates a filter excluding `excluded`; by default the spec's `defaultExcluded`.
    public init(excluded: [String] = RouteFilter.defaultExcluded) {
        self.excluded = excluded
        var prefixes: [String] = []
        var exact: Set<String> = []
        for entry in excluded.map(Self.normalizeEntry) {
            if entry.hasSuffix("/*") {
                let base = String(entry.dropLast(2))
                exact.insert(base.isEmpty ? "/" : base)
                prefixes.append(base + "/")
            } else {
                let base = entry.count > 1 && entry.hasSuffix("/") ? String(entry.dropLast()) : entry
                exact.insert(base)
                prefixes.append(base == "/" ? "/" : base + "/")
            }
        }
        self.prefixes = prefixes
        self.exact = exact
        // Sorted: a `Set`'s order may differ between two equal filters, and the arrays take part
        // in `==`.
        exactBytes = exact.sorted().map { Array($0.utf8) }
        prefixBytes = prefixes.map { Array($0.utf8) }
    }

    /// Whether `path` is organic.
    package func isOrganic(_ path: some StringProtocol) -> Bool {
        isOrganic(String(path))
    }

    /// `isOrganic` on a concrete `String`, so that the byte loops below are specialized even when
    /// called from another module (a generic call costs a witness call per byte).
    package func isOrganic(_ path: String) -> Bool {
        // Most paths are already in normal form, in ASCII: compare their bytes as they are, with
        // no allocation (for ASCII, bytes and characters compare alike).
        var path = path
        let fast = path.withUTF8 { bytes -> Bool? in
            guard Self.isNormal(bytes) else { return nil }
            for entry in exactBytes where entry.count == bytes.count && entry.elementsEqual(bytes) { return false }
            for prefix in prefixBytes where bytes.starts(with: prefix) { return false }
            return true
        }
        if let fast { return fast }
        let normal = Self.normalize(path)
        if exact.contains(normal) { return false }
        return !prefixes.contains { normal.hasPrefix($0) }
    }

    private static func normalizeEntry(_ entry: String) -> String {
        guard entry.hasSuffix("/*") else { return normalize(entry) }
        let base = normalize(entry.dropLast(2))
        return base == "/" ? "/*" : base + "/*"
    }

    /// The path as compared: no query, decoded, lowercased, no empty, `.` or `..` segments.
    package static func normalize(_ raw: some StringProtocol) -> String {
        var bytes: [UInt8] = []
        var iterator = raw.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "?") || byte == UInt8(ascii: "#") { break }
            bytes.append(byte)
        }
        // Percent-decode, then lowercase ASCII letters.
        var decoded: [UInt8] = []
        decoded.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "%"), index + 2 < bytes.count,
                let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2])
            {
                decoded.append(high << 4 | low)
                index += 3
            } else {
                decoded.append(bytes[index])
                index += 1
            }
        }
        for position in decoded.indices where decoded[position] >= 0x41 && decoded[position] <= 0x5A {
            decoded[position] += 0x20
        }
        var segments: [ArraySlice<UInt8>] = []
        for segment in decoded.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            if segment.elementsEqual([UInt8(ascii: ".")]) { continue }
            if segment.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) {
                if !segments.isEmpty { segments.removeLast() }
                continue
            }
            segments.append(segment)
        }
        var result: [UInt8] = []
        for segment in segments {
            result.append(UInt8(ascii: "/"))
            result.append(contentsOf: segment)
        }
        return result.isEmpty ? "/" : String(decoding: result, as: UTF8.self)
    }

    /// Whether `normalize` would return `path` unchanged and it is ASCII: it starts with `/`, and
    /// has no query, fragment, `%`, upper-case letter, empty segment, `.` or `..` segment,
    /// trailing `/`, or byte over 127.
    package static func isNormal(_ path: String) -> Bool {
        var path = path
        return path.withUTF8 { isNormal($0) }
    }

    private static func isNormal(_ path: UnsafeBufferPointer<UInt8>) -> Bool {
        guard path.first == UInt8(ascii: "/") else { return false }
        var segmentLength = 0
        var dots = 0
        var count = 0
        for byte in path {
            count += 1
            switch byte {
            case UInt8(ascii: "?"), UInt8(ascii: "#"), UInt8(ascii: "%"), UInt8(ascii: "A")...UInt8(ascii: "Z"), 0x80...:
                return false
            case UInt8(ascii: "/"):
                // An empty, `.` or `..` segment ends here (the leading `/` opens the first).
                if count > 1 && (segmentLength == 0 || segmentLength == dots && dots <= 2) { return false }
                segmentLength = 0
                dots = 0
            default:
                segmentLength += 1
                if byte == UInt8(ascii: ".") { dots += 1 }
            }
        }
        // The last segment: none (the root, or a trailing `/`), `.` or `..`.
        if count == 1 { return true }
        return segmentLength > 0 && !(segmentLength == dots && dots <= 2)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
