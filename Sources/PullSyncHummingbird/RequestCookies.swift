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
    /// Every cookie, in order, as slices of the headers (no copies): split once, so that nine
    /// lookups in a browser's 4 KiB `Cookie` header cost one pass over it, not nine.
    private var cookies: [(name: Substring, value: Substring)] = []

    /// The cookies of `request` (all of its `Cookie` headers, in order).
    public init(_ request: Request) {
        self.init(headers: request.headers[values: .cookie])
    }

    /// The cookies in these `Cookie` header values, in order.
    public init(headers: [String]) {
        for header in headers { Self.split(header, into: &cookies) }
    }

    /// The value of the first cookie named `name`, or `nil` when there is none (or it is empty).
    public subscript(name: String) -> Substring? {
        let length = name.utf8.count
        for cookie in cookies where cookie.name.utf8.count == length && cookie.name.utf8.elementsEqual(name.utf8) {
            // The first cookie of that name decides, even when it has no value.
            return cookie.value.isEmpty ? nil : cookie.value
        }
        return nil
    }

    /// Splits `header` into `name=value` pairs separated by `;`, leading whitespace dropped from
    /// each; a pair without `=` is skipped; a pair without a name keeps no value (as Hummingbird
    /// reads them). One pass over its contiguous bytes.
    private static func split(_ header: String, into cookies: inout [(name: Substring, value: Substring)]) {
        let utf8 = header.utf8
        func slice(_ start: Int, _ end: Int) -> Substring {
            Substring(utf8[utf8.index(utf8.startIndex, offsetBy: start)..<utf8.index(utf8.startIndex, offsetBy: end)])
        }
        var contiguous = header
        contiguous.withUTF8 { bytes in
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
                let valueEnd = nameStart == nameEnd ? valueStart : index
                cookies.append((slice(nameStart, nameEnd), slice(valueStart, valueEnd)))
                index += 1
            }
        }
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || (byte >= 0x09 && byte <= 0x0D)
    }
}
