/// Why a consent string (a TC string, a GPP string or section, a US privacy string) could not
/// be decoded. A string that fails to decode counts as no consent where it applies.
///
/// A struct around a private code, like `HTTPClientError`, so kinds can be added without
/// breaking callers: compare ``kind`` with the static members of ``Kind``.
public struct ConsentStringError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The class of problem.
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        private enum Code: String {
            case empty
            case tooLong = "too_long"
            case invalidCharacter = "invalid_character"
            case truncated
            case unsupportedVersion = "unsupported_version"
            case invalidValue = "invalid_value"
        }

        private let code: Code

        /// The string (or a required part of it) is empty.
        public static let empty = Kind(code: .empty)
        /// Longer than any valid string of its kind; not decoded at all.
        public static let tooLong = Kind(code: .tooLong)
        /// A character outside the encoding's alphabet.
        public static let invalidCharacter = Kind(code: .invalidCharacter)
        /// A field ends past the end of the string.
        public static let truncated = Kind(code: .truncated)
        /// A version (or header type) this decoder does not know.
        public static let unsupportedVersion = Kind(code: .unsupportedVersion)
        /// A field holds a value the format does not allow.
        public static let invalidValue = Kind(code: .invalidValue)

        public var description: String { code.rawValue }
    }

    /// The class of problem.
    public let kind: Kind
    /// What is wrong and where, e.g. `TC string segment 1: vendor consents range entry 3 ends past the string`.
    public let message: String

    /// Creates an error of `kind`; the message says what is wrong and where.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
