/// A decoded IAB Global Privacy Platform (GPP) string, version 1: the header's section IDs and
/// each section's encoded text, in the order they appear (`header~section~section…`).
///
/// Only the header is decoded here; sections are decoded by what reads them (``TCString`` for
/// section 2, ``USPrivacyString`` for 6, ``USOptOuts`` for the US sections 7 to 12).
///
/// Format: IAB Tech Lab, "Global Privacy Platform String", Core/Consent String Specification.md
/// (InteractiveAdvertisingBureau/Global-Privacy-Platform): header type 3 (6 bits), version 1
/// (6 bits), then the section IDs as a Fibonacci-coded range list.
public struct GPPString: Sendable, Equatable {
    /// One section: its ID and its text as it appears in the string.
    public struct Section: Sendable, Equatable {
        /// The section ID (2 for EU TCF v2, 6 for US privacy, 7 for US national, …).
        public var id: Int
        /// The section's encoded text.
        public var text: String
    }

    /// The sections, in header order.
    public var sections: [Section]

    /// The header's section IDs, ascending.
    public var sectionIDs: [Int] { sections.map(\.id) }

    /// The text of section `id`, if the string has it.
    public func section(_ id: Int) -> String? {
        sections.first { $0.id == id }?.text
    }

    /// The longest string decoded.
    public static let maximumLength = 32 * 1024

    /// The EU TCF v2 section.
    public static let tcfEUv2 = 2
    /// The US Privacy string section.
    public static let usPrivacy = 6

    /// Decodes `text`.
    ///
    /// - Throws: a ``ConsentStringError`` when the header is not a GPP v1 header, or it lists a
    ///   different number of sections than the string holds.
    public init(decoding text: some StringProtocol) throws(ConsentStringError) {
        guard !text.isEmpty else { throw ConsentStringError(.empty, "GPP string is empty") }
        guard text.utf8.count <= Self.maximumLength else {
            throw ConsentStringError(.tooLong, "GPP string is \(text.utf8.count) bytes; at most \(Self.maximumLength)")
        }
        let parts = Substring(text).split(separator: "~", omittingEmptySubsequences: false)
        var bits: ConsentBits
        do {
            bits = try ConsentBits(base64URL: parts[0])
        } catch {
            throw ConsentStringError(
                .invalidCharacter,
                "GPP header: the character at offset \(error.offset) is not base64url (A-Z, a-z, 0-9, '-', '_')"
            )
        }
        func truncated(_ field: String) -> ConsentStringError {
            ConsentStringError(.truncated, "GPP header: \(field) ends past the header")
        }
        guard let type = bits.read(6) else { throw truncated("Type") }
        guard type == 3 else {
            throw ConsentStringError(.unsupportedVersion, "GPP header: type \(type); a GPP header has type 3")
        }
        guard let version = bits.read(6) else { throw truncated("Version") }
        guard version == 1 else {
            throw ConsentStringError(.unsupportedVersion, "GPP header: version \(version) is not supported; only 1 is")
        }
        guard let count = bits.read(12) else { throw truncated("section count") }

        let available = parts.count - 1
        var ids: [Int] = []
        var last = 0
        func fibonacci(_ field: String) throws(ConsentStringError) -> Int {
            switch bits.readFibonacci() {
            case .value(let value): return value
            case .truncated: throw truncated(field)
            case .tooLong:
                throw ConsentStringError(.invalidValue, "GPP header: \(field) is not a valid Fibonacci code")
            }
        }
        for entry in 0..<count {
            let field = "section entry \(entry + 1)"
            guard let isRange = bits.readBit() else { throw truncated(field) }
            // Each ID is an offset from the previous one, so IDs only ascend.
            let start = last + (try fibonacci(field))
            let end = isRange ? start + (try fibonacci(field)) : start
            // More IDs than sections is an error anyway; stop before a huge range is expanded.
            guard end - start < available - ids.count else {
                throw Self.mismatch(listed: ids.count + end - start + 1, available: available)
            }
            ids.append(contentsOf: start...end)
            last = end
        }
        guard ids.count == available else { throw Self.mismatch(listed: ids.count, available: available) }
        sections = zip(ids, parts.dropFirst()).map { Section(id: $0, text: String($1)) }
    }

    private static func mismatch(listed: Int, available: Int) -> ConsentStringError {
        ConsentStringError(
            .invalidValue,
            "GPP header lists \(listed) section\(listed == 1 ? "" : "s") but the string has \(available)"
        )
    }
}
