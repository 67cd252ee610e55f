public import Hummingbird

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A request's cookies, looked up by name straight in its `Cookie` headers.
///
/// The same answers as Hummingbird's `Request.cookies[name]?.value` (the first cookie of that
/// name, its value as sent, undecoded; `nil` when that value is empty), without building a
/// `Cookie` per lookup. The middleware reads up to nine cookies on every page view, and
/// Hummingbird's `Cookies` splits the header by `Character` and parses each cookie's attributes
/// on each lookup: about 40 % of the middleware's cost on a returning browser's page view
/// (profiled; BENCHMARKS.md, measure 2).
public struct RequestCookies: Sendable {
    /// The `Cookie` header values, joined by `; ` (the one header a browser sends, as is).
    private let header: String
    /// Every cookie, in order, as byte offsets into ``header``: split once, so that nine lookups
    /// in a browser's 4 KiB `Cookie` header cost one pass over it, not nine. Offsets rather than
    /// slices, so that a lookup compares bytes without retaining and releasing every cookie it
    /// passes.
    private let cookies: [Span]
    /// A bit per name present (see ``bit(_:)``): most names a page view looks up (the consent
    /// cookies) are absent, and such a lookup mostly ends at this check.
    private let names: UInt64

    private struct Span {
        var name: Range<Int>
        var value: Range<Int>
    }

    /// The cookies of `request` (all of its `Cookie` headers, in order).
    public init(_ request: Request) {
        // The fields' values as they came, not `headers[values: .cookie]`, which splits every
        // cookie into a string of its own.
        var header: String?
        for field in request.headers where field.name == .cookie {
            header = header.map { $0 + "; " + field.value } ?? field.value
        }
        self.init(header: header ?? "")
    }

    /// The cookies in these `Cookie` header values, in order.
    public init(headers: [String]) {
        self.init(header: headers.joined(separator: "; "))
    }

    private init(header: String) {
        var header = header
        var spans: [Span] = []
        var names: UInt64 = 0
        // Contiguous UTF-8, so that every lookup can read the bytes in place.
        header.withUTF8 { bytes in
            // Room for every cookie at once: at most one more than there are `;`.
            var semicolons = 0
            var next = Self.offset(of: UInt8(ascii: ";"), in: bytes, from: 0, to: bytes.count)
            while next < bytes.count {
                semicolons += 1
                next = Self.offset(of: UInt8(ascii: ";"), in: bytes, from: next + 1, to: bytes.count)
            }
            spans.reserveCapacity(1 + semicolons)
            Self.split(bytes, into: &spans)
            for span in spans { names |= Self.bit(UnsafeBufferPointer(rebasing: bytes[span.name])) }
        }
        self.header = header
        self.cookies = spans
        self.names = names
    }

    /// The value of the first cookie named `name`, or `nil` when there is none (or it is empty).
    public subscript(name: String) -> Substring? {
        var name = name
        guard let span = name.withUTF8({ first(named: $0) }) else { return nil }
        // The first cookie of that name decides, even when it has no value.
        guard !span.value.isEmpty else { return nil }
        let utf8 = header.utf8
        let start = utf8.index(utf8.startIndex, offsetBy: span.value.lowerBound)
        return Substring(utf8[start..<utf8.index(start, offsetBy: span.value.count)])
    }

    private func first(named name: UnsafeBufferPointer<UInt8>) -> Span? {
        guard names & Self.bit(name) != 0 else { return nil }
        // Already contiguous (made so when split): this reads the bytes in place.
        var header = header
        return header.withUTF8 { bytes in
            cookies.first { $0.name.count == name.count && bytes[$0.name].elementsEqual(name) }
        }
    }

    /// Splits the header into `name=value` pairs separated by `;`, leading whitespace dropped from
    /// each; a pair without `=` is skipped; a pair without a name keeps no value (as Hummingbird
    /// reads them). The `;` and `=` are found with `memchr`, which reads a word at a time: most of
    /// a `Cookie` header is values.
    private static func split(_ bytes: UnsafeBufferPointer<UInt8>, into cookies: inout [Span]) {
        let end = bytes.count
        var index = 0
        while index < end {
            while index < end, isWhitespace(bytes[index]) { index += 1 }
            let nameStart = index
            let pairEnd = offset(of: UInt8(ascii: ";"), in: bytes, from: index, to: end)
            let nameEnd = offset(of: UInt8(ascii: "="), in: bytes, from: index, to: pairEnd)
            index = pairEnd + 1
            guard nameEnd < pairEnd else { continue }
            // As Hummingbird reads `name==value`: every `=` after the name is skipped.
            var valueStart = nameEnd
            while valueStart < pairEnd, bytes[valueStart] == UInt8(ascii: "=") { valueStart += 1 }
            let valueEnd = nameStart == nameEnd ? valueStart : pairEnd
            cookies.append(Span(name: nameStart..<nameEnd, value: valueStart..<valueEnd))
        }
    }

    /// The offset of the first `byte` in `bytes[start..<end]`, or `end` when there is none.
    private static func offset(
        of byte: UInt8,
        in bytes: UnsafeBufferPointer<UInt8>,
        from start: Int,
        to end: Int
    ) -> Int {
        guard start < end, let base = bytes.baseAddress, let found = memchr(base + start, Int32(byte), end - start)
        else { return end }
        return UnsafeRawPointer(base).distance(to: UnsafeRawPointer(found))
    }

    /// One of 64 bits for a name, from its length and its first and last bytes.
    private static func bit(_ name: UnsafeBufferPointer<UInt8>) -> UInt64 {
        let mixed = name.count &* 31 &+ Int(name.first ?? 0) &* 7 &+ Int(name.last ?? 0)
        return 1 << UInt64(mixed & 63)
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || (byte >= 0x09 && byte <= 0x0D)
    }
}
