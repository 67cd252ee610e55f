/// A validated Edge Cookie (EC): the publisher's first-party identifier for one browser.
///
/// The default format is 64 lowercase hex digits, a dot, and 6 alphanumerics. The part
/// before the first `.` is the ``hash``, which keys the identity graph and rate limits.
public struct EdgeCookie: Sendable, Hashable, CustomStringConvertible {
    /// The whole cookie value, for example `3f…9a.AbC123`.
    public let value: String
    /// The part before the first `.`.
    public let hash: Substring

    /// Wraps a value that an ``EdgeCookieFormat`` accepted. `hash` is the part before the first `.`.
    public init(unchecked value: String) {
        // A byte search: splitting by Character walks grapheme clusters (about 27,000 instructions
        // for a 71-byte EC, measured with callgrind, a third of a request's decisions).
        var contiguous = value
        let offset = contiguous.withUTF8 { $0.firstIndex(of: UInt8(ascii: ".")) ?? $0.count }
        self.init(unchecked: value, hashLength: offset)
    }

    /// Wraps a value whose hash is its first `hashLength` bytes (a format that knows where its
    /// `.` is doesn't search for it).
    package init(unchecked value: String, hashLength: Int) {
        self.value = value
        self.hash = value[..<value.utf8.index(value.utf8.startIndex, offsetBy: hashLength)]
        self.hashDigest = ECHash(hash).digest
    }

    /// The hash's hash value, worked out once per EC (see ``ECHash``).
    private let hashDigest: Int

    /// The hash with its hash value (see ``ECHash``).
    package var hashKey: ECHash { ECHash(hash, digest: hashDigest) }

    /// The hash as a `String`.
    package var hashString: String { String(hash) }

    public var description: String { value }
}

/// Decides whether a raw cookie value is a well-formed EC. Pluggable so that deployments
/// with another EC scheme can use the kernel unchanged.
public protocol EdgeCookieFormat: Sendable {
    /// Returns the parsed EC, or `nil` when `raw` is not well formed.
    func parse(_ raw: some StringProtocol) -> EdgeCookie?

    /// The length in UTF-8 bytes of the hash at the start of `raw` (the part before the first
    /// `.`) when `raw` is well formed, or `nil`: ``parse(_:)``'s answer without making an
    /// ``EdgeCookie``. A host reads a returning browser's EC with it in place, in its `Cookie`
    /// header, and copies it out only when the EC is needed. The default calls ``parse(_:)``.
    func hashLength(of raw: Substring) -> Int?
}

extension EdgeCookieFormat {
    public func hashLength(of raw: Substring) -> Int? {
        parse(raw)?.hash.utf8.count
    }
}

/// `^[0-9a-f]{64}\.[A-Za-z0-9]{6}$`, checked byte by byte (no regex engine on the hot path).
public struct DefaultEdgeCookieFormat: EdgeCookieFormat {
    /// Creates the default EC format.
    public init() {}

    public func parse(_ raw: some StringProtocol) -> EdgeCookie? {
        // A String first, then nothing generic: called through `any EdgeCookieFormat`, every use
        // of a generic value (even its length) is a witness call.
        var value = String(raw)
        return value.withUTF8(Self.isWellFormed) ? EdgeCookie(unchecked: value, hashLength: 64) : nil
    }

    public func hashLength(of raw: Substring) -> Int? {
        // A Substring of a native String (a header value) is contiguous: read in place.
        let wellFormed = raw.utf8.withContiguousStorageIfAvailable(Self.isWellFormed) ?? (parse(raw) != nil)
        return wellFormed ? 64 : nil
    }

    /// One range check per byte.
    private static func isWellFormed(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        bytes.count == 71 && bytes[64] == UInt8(ascii: ".") && bytes[..<64].allSatisfy(isLowercaseHex)
            && bytes[65...].allSatisfy(isAlphanumeric)
    }

    private static func isLowercaseHex(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x66)
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
    }
}

/// An EC's hash and its (seeded) hash value, worked out once: the keys of a request's calls (rate
/// limits, calls in flight) and the fresh-EC memo hash this value, not the 64 bytes again each time
/// (that was about a third of a called partner's instructions). The keys compare the text itself.
package struct ECHash: Sendable {
    package let text: Substring
    package let digest: Int

    package init(_ text: Substring) {
        var hasher = Hasher()
        hasher.combine(text)
        self.init(text, digest: hasher.finalize())
    }

    fileprivate init(_ text: Substring, digest: Int) {
        self.text = text
        self.digest = digest
    }
}

/// An EC, as two hashes of its hash: no string kept, nothing allocated to look one up. What the
/// node's own tables of ECs (the fresh-EC memo, the recently issued and withdrawn ECs) are keyed
/// by. Two ECs share a key only if 128 bits of two seeded hashes collide; at worst one of those
/// tables then answers for the other EC.
package struct ECKey: Hashable, Sendable {
    var first: Int
    var second: Int

    init(first: Int, second: Int) {
        self.first = first
        self.second = second
    }

    package init(_ edgeCookie: EdgeCookie) {
        self.init(ecHash: edgeCookie.hashKey)
    }

    package init(ecHash: Substring) {
        self.init(ecHash: ECHash(ecHash))
    }

    /// The first half is the hash value the EC carries already.
    package init(ecHash: ECHash) {
        var second = Hasher()
        second.combine(0x5EC0_4D)
        second.combine(ecHash.text)
        self.first = ecHash.digest
        self.second = second.finalize()
    }
}
