/// What a compiled adapter is called in manifests (`pull.adapter`) and which parameters it
/// takes (`pull.params`).
///
/// Descriptors are plain data, apart from the adapters they describe: manifests can then be
/// checked (by `pullsync check`, and by the build plugin's tool, which links no adapter) without
/// the implementations.
public struct AdapterDescriptor: Sendable, Hashable {
    /// The name manifests give in `pull.adapter`: 1 to 32 of `a-z`, `0-9` and `-`, starting
    /// with a letter or digit.
    public var name: String
    /// One line: the protocol the adapter speaks.
    public var summary: String
    /// The parameters, in the order documentation lists them.
    public var parameters: [AdapterParameter]

    /// Creates the descriptor of the adapter that manifests call `name`.
    public init(name: String, summary: String, parameters: [AdapterParameter]) {
        self.name = name
        self.summary = summary
        self.parameters = parameters
    }

    /// The parameter called `name`.
    public func parameter(named name: String) -> AdapterParameter? {
        parameters.first { $0.name == name }
    }

    /// Whether `name` is a valid adapter name: `^[a-z0-9][a-z0-9-]{0,31}$`.
    package static func isValidName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...32).contains(bytes.count), bytes[0] != UInt8(ascii: "-") else { return false }
        return bytes.allSatisfy { byte in
            (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39) || byte == UInt8(ascii: "-")
        }
    }
}

/// One parameter of a compiled adapter: its name, what values it takes, and whether it may be
/// left out.
public struct AdapterParameter: Sendable, Hashable {
    /// The values a parameter takes. Each kind has one value form (``AdapterParameterValue``)
    /// and one set of rules, applied alike to manifests and to parameters built in code.
    public enum Kind: Sendable, Hashable {
        /// One line of text: 1 to 1,024 UTF-8 bytes, no control characters.
        case text
        /// An integer in the range.
        case integer(ClosedRange<Int>)
        /// `true` or `false`.
        case boolean
        /// A duration in the range.
        case duration(ClosedRange<Duration>)
        /// A secret reference (`{ env: NAME }` or `{ file: PATH }`), never a literal.
        case secret
        /// An HTTP header name (an RFC 9110 token) other than those the HTTP client sets.
        case headerName
        /// A dot path of JSON object keys, like `data.user.id`.
        case fieldPath
        /// One of the listed words.
        case choice([String])
    }

    /// Whether the parameter may be left out, and what it then is.
    public enum Requirement: Sendable, Hashable {
        /// Manifests must give it.
        case required
        /// It may be left out; the adapter then does without.
        case optional
        /// It may be left out; it then has this value.
        case defaulted(AdapterParameterValue)
    }

    /// The key under `pull.params`: `^[a-z][a-z0-9_]*$`.
    public var name: String
    /// The values it takes, and their rules.
    public var kind: Kind
    /// Whether manifests must give it, and its default if not.
    public var requirement: Requirement
    /// One line: what it is for.
    public var summary: String

    /// Creates a parameter called `name` (the key under `pull.params`) of `kind`.
    public init(_ name: String, _ kind: Kind, _ requirement: Requirement, summary: String) {
        self.name = name
        self.kind = kind
        self.requirement = requirement
        self.summary = summary
    }

    /// Header names an adapter may not set: the HTTP client derives them from the request.
    package static let refusedHeaderNames: Set<String> = ["host", "content-length", "transfer-encoding", "connection"]

    /// What is wrong with `value` for this parameter, or `nil` when it is valid. Messages say what
    /// would be valid and never repeat a secret.
    package func problem(with value: AdapterParameterValue) -> String? {
        switch (kind, value) {
        case (.text, .text(let text)):
            if text.isEmpty { return "must not be empty" }
            if text.utf8.count > 1024 { return "must be at most 1,024 bytes" }
            if text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                return "must be one line without control characters"
            }
            return nil
        case (.integer(let range), .integer(let number)):
            return range.contains(number) ? nil : "must be an integer from \(range.lowerBound) to \(range.upperBound)"
        case (.boolean, .boolean):
            return nil
        case (.duration(let range), .duration(let duration)):
            return range.contains(duration)
                ? nil : "must be from \(Self.describe(range.lowerBound)) to \(Self.describe(range.upperBound))"
        case (.secret, .secret):
            return nil
        case (.headerName, .text(let name)):
            if !Self.isToken(name) {
                return "must be an HTTP header name (letters, digits and !#$%&'*+-.^_`|~)"
            }
            if Self.refusedHeaderNames.contains(name.lowercased()) {
                return "cannot be Host, Content-Length, Transfer-Encoding or Connection (the HTTP client sets them)"
            }
            return nil
        case (.fieldPath, .fieldPath(let keys)):
            return keys.isEmpty || keys.contains(where: \.isEmpty)
                ? "must be a dot path of object keys like uid or data.user.id" : nil
        case (.choice(let words), .text(let word)):
            return words.contains(word) ? nil : "must be one of \(words.joined(separator: ", "))"
        default:
            return "must be \(kind.expectation)"
        }
    }

    /// Whether `name` is an RFC 9110 token (the manifest validator checks header names with it too).
    package static func isToken(_ name: String) -> Bool {
        !name.isEmpty
            && name.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"),
                    UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"),
                    UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"),
                    UInt8(ascii: "|"), UInt8(ascii: "~"):
                    true
                default:
                    false
                }
            }
    }

    /// `90s`, `5m`, `30d`: the largest whole unit.
    static func describe(_ duration: Duration) -> String {
        let seconds = duration.components.seconds
        guard duration.components.attoseconds == 0 else { return "\(duration.nanoseconds / 1_000_000)ms" }
        for (unit, size) in [("d", Int64(86_400)), ("h", 3600), ("m", 60)] where seconds >= size && seconds % size == 0
        {
            return "\(seconds / size)\(unit)"
        }
        return "\(seconds)s"
    }
}

extension AdapterParameter.Kind {
    /// What a value of this kind looks like, for messages: "a duration like 30d".
    package var expectation: String {
        switch self {
        case .text: "one line of text"
        case .integer(let range): "an integer from \(range.lowerBound) to \(range.upperBound)"
        case .boolean: "true or false"
        case .duration: "a duration like 500ms, 2s, 5m, 24h or 30d"
        case .secret: "a secret reference like { env: NAME } or { file: PATH }, never a literal"
        case .headerName: "an HTTP header name like X-Signature"
        case .fieldPath: "a dot path of object keys like uid or data.user.id"
        case .choice(let words): "one of \(words.joined(separator: ", "))"
        }
    }
}

/// A parameter's value, as a manifest gives it or code builds it.
public enum AdapterParameterValue: Sendable, Hashable {
    /// `text`, `headerName` and `choice` parameters.
    case text(String)
    case integer(Int)
    case boolean(Bool)
    case duration(Duration)
    /// A reference; the registry resolves it when partners load.
    case secret(SecretReference)
    /// Object keys, in order.
    case fieldPath([String])
}
