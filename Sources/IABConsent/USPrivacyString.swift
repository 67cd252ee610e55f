/// A decoded IAB US Privacy (CCPA) string, version 1: four characters, e.g. `1YNN`. The
/// `us_privacy` cookie, or section 6 (`uspv1`) of a GPP string.
///
/// Format: IAB Tech Lab, "U.S. Privacy String" v1: the version `1`, then three flags, each
/// `Y`, `N` or `-` (not applicable): notice given, opted out of sale, covered by the LSPA.
public struct USPrivacyString: Sendable, Hashable {
    /// One flag of the string.
    public enum Flag: Sendable, Hashable {
        /// `Y`.
        case yes
        /// `N`.
        case no
        /// `-`.
        case notApplicable
    }

    /// Always 1.
    public var version: Int
    /// Explicit notice of the right to opt out was given.
    public var notice: Flag
    /// The user opted out of the sale of their personal information.
    public var optOutOfSale: Flag
    /// The publisher is a signatory to the IAB Limited Service Provider Agreement.
    public var coveredByLSPA: Flag

    /// Decodes `text` (flags in either case).
    public init(decoding text: some StringProtocol) throws(ConsentStringError) {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { throw ConsentStringError(.empty, "US privacy string is empty") }
        guard bytes.count == 4 else {
            throw ConsentStringError(
                .invalidValue,
                "US privacy string '\(Self.printable(text))' has \(bytes.count) characters; expected 4, like 1YNN"
            )
        }
        guard bytes[0] == UInt8(ascii: "1") else {
            throw ConsentStringError(
                .unsupportedVersion,
                "US privacy string '\(Self.printable(text))' has version '\(Character(Unicode.Scalar(bytes[0])))'; only 1 is supported"
            )
        }
        var flags: [Flag] = []
        for (position, byte) in bytes.dropFirst().enumerated() {
            switch byte {
            case UInt8(ascii: "Y"), UInt8(ascii: "y"): flags.append(.yes)
            case UInt8(ascii: "N"), UInt8(ascii: "n"): flags.append(.no)
            case UInt8(ascii: "-"): flags.append(.notApplicable)
            default:
                throw ConsentStringError(
                    .invalidValue,
                    "US privacy string '\(Self.printable(text))': character \(position + 2) must be Y, N or -"
                )
            }
        }
        version = 1
        notice = flags[0]
        optOutOfSale = flags[1]
        coveredByLSPA = flags[2]
    }

    /// Whether the string says the user opted out of sale.
    public var optedOut: Bool { optOutOfSale == .yes }

    /// `text` for an error message: at most 16 printable ASCII characters.
    private static func printable(_ text: some StringProtocol) -> String {
        String(
            text.unicodeScalars.prefix(16).map {
                $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F ? Character($0) : "?"
            }
        )
    }
}
