public import Hummingbird

/// A request's cookies, looked up by name straight in its `Cookie` headers.
///
/// The same answers as Hummingbird's `Request.cookies[name]?.value` (the first cookie of that
/// name, its value as sent, undecoded; `nil` when that value is empty), without building a `Cookie` per lookup: the middleware
/// reads up to nine cookies on every page view, and Hummingbird's `Cookies` splits the header
/// by `Character` and parses each cookie's attributes on each lookup (measured: a third of the
/// middleware's cost on a returning browser's page view; BENCHMARKS.md, measure 2).
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
        let bytes = header.utf8
        let end = bytes.endIndex
        var index = bytes.startIndex
        while index < end {
            while index < end, isWhitespace(bytes[index]) { bytes.formIndex(after: &index) }
            let nameStart = index
            while index < end, bytes[index] != UInt8(ascii: "="), bytes[index] != UInt8(ascii: ";") {
                bytes.formIndex(after: &index)
            }
            guard index < end, bytes[index] == UInt8(ascii: "=") else {
                if index < end { bytes.formIndex(after: &index) }
                continue
            }
            let nameEnd = index
            // As Hummingbird reads `name==value`: every `=` after the name is skipped.
            while index < end, bytes[index] == UInt8(ascii: "=") { bytes.formIndex(after: &index) }
            let valueStart = index
            while index < end, bytes[index] != UInt8(ascii: ";") { bytes.formIndex(after: &index) }
            if bytes[nameStart..<nameEnd].elementsEqual(name.utf8) {
                // The first cookie of that name decides, even when it has no value.
                return nameStart == nameEnd || valueStart == index ? nil : Substring(bytes[valueStart..<index])
            }
            if index < end { bytes.formIndex(after: &index) }
        }
        return nil
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || (byte >= 0x09 && byte <= 0x0D)
    }
}
