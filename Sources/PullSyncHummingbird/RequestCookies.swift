public import Hummingbird

/// A request's cookies, looked up by name straight in its `Cookie` headers.
///
/// The same answers as Hummingbird's `Request.cookies[name]?.value` (the first cookie of that
/// name, its value as sent, undecoded; `nil` when that value is empty), without building a
/// `Cookie` per lookup. The middleware reads up to nine cookies on every page view, and
/// Hummingbird's `Cookies` splits the header by `Character` and parses each cookie's attributes
/// on each lookup: about 40 % of the middleware's cost on a returning browser's page view
/// (profiled; BENCHMARKS.md, measure 2).
public struct RequestCookies: Sendable {
    private let headers: [String]

    /// The cookies of `request` (all of its `Cookie` headers, in order).
    public init(_ request: Request) {
        self.headers = request.headers[values: .cookie]
    }

    /// The cookies in these `Cookie` header values, in order.
    public init(headers: [String]) {
        self.headers = headers
    }

    /// The value of the first cookie named `name`, or `nil` when there is none.
    public subscript(name: String) -> Substring? {
        for header in headers {
            if let value = Self.value(of: name, in: header) { return value }
        }
        return nil
    }

    /// One pass over `header`'s bytes: `name=value` pairs separated by `;`, leading whitespace
    /// dropped from each; a pair without `=` is skipped; an empty name or value reads as none.
    private static func value(of name: String, in header: String) -> Substring? {
        var header = header
        // Byte offsets from a scan of the contiguous UTF-8 (no index arithmetic per byte).
        let found: (start: Int, end: Int)?? = header.withUTF8 { bytes in
            var name = name
            return name.withUTF8 { name in scan(bytes, for: name) }
        }
        guard let found else { return nil }
        guard let (start, end) = found else { return nil }
        let utf8 = header.utf8
        return Substring(utf8[utf8.index(utf8.startIndex, offsetBy: start)..<utf8.index(utf8.startIndex, offsetBy: end)])
    }

    /// The byte range of the value of the first cookie named `name`: `nil` when there is no such
    /// cookie, `.some(nil)` when the first one has an empty value.
    private static func scan(_ bytes: UnsafeBufferPointer<UInt8>, for name: UnsafeBufferPointer<UInt8>) -> (
        start: Int, end: Int
    )?? {
        let end = bytes.count
        var index = 0
        while index < end {
            while index < end, isWhitespace(bytes[index]) { index += 1 }
            let nameStart = index
            while index < end, bytes[index] != UInt8(ascii: "="), bytes[index] != UInt8(ascii: ";") { index += 1 }
            guard index < end, bytes[index] == UInt8(ascii: "=") else {
                index += 1
                continue
            }
            let nameEnd = index
            // As Hummingbird reads `name==value`: every `=` after the name is skipped.
            while index < end, bytes[index] == UInt8(ascii: "=") { index += 1 }
            let valueStart = index
            while index < end, bytes[index] != UInt8(ascii: ";") { index += 1 }
            if nameEnd - nameStart == name.count,
                UnsafeBufferPointer(rebasing: bytes[nameStart..<nameEnd]).elementsEqual(name)
            {
                // The first cookie of that name decides, even when it has no value.
                return nameStart == nameEnd || valueStart == index ? .some(nil) : (valueStart, index)
            }
            index += 1
        }
        return nil
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || (byte >= 0x09 && byte <= 0x0D)
    }
}
