import PullSyncKernel
import PartnerAdapterKit

/// Walks one composed manifest, reporting every problem (it keeps going after each one) and
/// building the ``PartnerManifest`` when there are none.
struct ManifestValidator {
    typealias Problem = ManifestComposer.Problem

    static let topLevelKeys = ManifestKeys.names(under: nil)
    static let pullKeys = ManifestKeys.names(under: "pull")
    static let authKeys = ManifestKeys.names(under: "pull.auth")
    static let referenceKeys = ManifestKeys.secretReferenceKeys
    static let responseKeys = ManifestKeys.names(under: "pull.response")
    static let rateLimitKeys = ManifestKeys.names(under: "pull.rate_limit")
    static let consentKeys = ManifestKeys.names(under: "consent")

    let path: String
    /// The compiled adapters `pull.adapter` may name.
    let adapters: [AdapterDescriptor]
    /// Problems in the order found; after ``maxProblems``, only counted (in ``omitted``).
    private(set) var problems: [Problem] = []
    /// Problems found beyond ``maxProblems``.
    private(set) var omitted = 0
    /// More than the loader shows, so that it can say how many it left out.
    static let maxProblems = ManifestLoader.maxDiagnosticsPerFile + 1
    /// `id`, when valid on its own (for cross-file duplicate checks even if the file has other problems).
    private(set) var id: (value: String, position: SourcePosition)?
    /// `source_domain`, normalized, when valid on its own.
    private(set) var sourceDomain: (value: String, position: SourcePosition)?

    init(path: String, adapters: [AdapterDescriptor]) {
        self.path = path
        self.adapters = adapters
    }

    /// Records a problem. The message is only built while problems are still being kept, so a
    /// file with a huge number of problems costs little more than a valid one.
    mutating func error(_ position: SourcePosition, _ message: @autoclosure () -> String) {
        guard problems.count < Self.maxProblems else {
            omitted += 1
            return
        }
        problems.append(Problem(position: position, message: message()))
    }

    /// Problems found, kept or not.
    var problemCount: Int { problems.count + omitted }

    // MARK: - The document

    mutating func validate(_ root: Node) -> PartnerManifest? {
        if case .scalar(let scalar) = root, ScalarMeaning(scalar) == .null {
            error(.start, "empty manifest; expected a mapping with keys id, source_domain, pull")
            return nil
        }
        guard let top = fields(of: root, path: nil, validKeys: Self.topLevelKeys, expected: "a mapping") else {
            return nil
        }

        var id: String?
        if let entry = top.required("id", in: &self) {
            if let value = string(entry) {
                if Partner.reservedIDs.contains(value) {
                    let reserved = Partner.reservedIDs.sorted().joined(separator: ", ")
                    error(
                        entry.value.position,
                        "'id' \(Quote.text(value)) is reserved; choose another (reserved: \(reserved))"
                    )
                } else if !Partner.isValidID(value) {
                    error(
                        entry.value.position,
                        "'id' must be 1 to 32 characters of a-z, 0-9, '_' and '-'; found \(Quote.text(value))"
                    )
                } else {
                    id = value
                    self.id = (value, entry.value.position)
                }
            }
        }

        var name: String?
        if let entry = top["name"], let value = string(entry) {
            if value.isEmpty {
                error(entry.value.position, "'name' must not be empty; leave it out to use the id")
            } else {
                name = value
            }
        }

        var sourceDomain: String?
        if let entry = top.required("source_domain", in: &self), let value = string(entry) {
            if HostName.isValidDNSName(value) {
                sourceDomain = HostName.normalize(value)
                self.sourceDomain = (HostName.normalize(value), entry.value.position)
            } else {
                error(
                    entry.value.position,
                    "'source_domain' must be a DNS name like acme.example; found \(Quote.text(value))"
                )
            }
        }

        var pull: PullSection?
        if let entry = top.required("pull", in: &self) {
            pull = validatePull(entry.value)
        }

        var consent = PartnerConsentRequirements()
        var consentValid = true
        if let entry = top["consent"] {
            if let value = validateConsent(entry.value) {
                consent = value
            } else {
                consentValid = false
            }
        }

        guard problemCount == 0, consentValid, let id, let sourceDomain, let pull else { return nil }
        return PartnerManifest(
            path: path,
            id: id,
            name: name,
            sourceDomain: sourceDomain,
            pullEnabled: pull.enabled,
            allowedHosts: pull.allowedHosts,
            ttl: pull.ttl,
            rateLimit: pull.rateLimit,
            timeout: pull.timeout,
            budgetPerSecond: pull.budgetPerSecond,
            consent: consent,
            adapter: pull.adapter,
            secrets: pull.secrets,
            idLocation: (self.id?.position.line ?? 1, self.id?.position.column ?? 1),
            sourceDomainLocation: (self.sourceDomain?.position.line ?? 1, self.sourceDomain?.position.column ?? 1),
            adapterLocation: pull.adapterPosition.map { ($0.line, $0.column) }
        )
    }

    // MARK: - consent

    private mutating func validateConsent(_ node: Node) -> PartnerConsentRequirements? {
        guard
            let consent = fields(
                of: node,
                path: "consent",
                validKeys: Self.consentKeys,
                expected: "a mapping with keys tcf_vendor_id, gpp_skip_sections"
            )
        else { return nil }
        let before = problemCount
        var result = PartnerConsentRequirements()
        if let entry = consent["tcf_vendor_id"] {
            result.tcfVendorID = integer(entry, in: 1...65_535, meaning: "the IAB TCF vendor ID")
        }
        if let entry = consent["gpp_skip_sections"] {
            let sections = integerList(
                entry,
                in: 1...255,
                meaning: "a GPP section ID",
                listExample: "a list of GPP section IDs like [7, 8]",
                repeatNoun: "section"
            )
            result.gppSkipSections = Set(sections ?? [])
        }
        return problemCount == before ? result : nil
    }
}

// MARK: - Reading nodes

extension ManifestValidator {
    /// One key and its value.
    struct Entry {
        var key: String
        var keyPosition: SourcePosition
        var value: Node
        /// The dotted path, e.g. `pull.rate_limit.calls`.
        var path: String
    }

    /// The entries of a mapping with a fixed set of keys.
    struct Fields {
        var path: String?
        var position: SourcePosition
        var entries: [Entry]

        subscript(key: String) -> Entry? { entries.last { $0.key == key } }

        /// The entry, or a "missing required key" problem at the mapping's start.
        func required(_ key: String, in validator: inout ManifestValidator) -> Entry? {
            if let entry = self[key] { return entry }
            validator.error(position, "missing required key '\(ManifestValidator.join(path, key))'")
            return nil
        }
    }

    static func join(_ path: String?, _ key: String) -> String {
        guard let path else { return key }
        return path + "." + key
    }

    /// `node` as a mapping whose keys must be among `validKeys`; reports anything else.
    mutating func fields(
        of node: Node,
        path: String?,
        validKeys: [String],
        expected: String,
        sensitive: Bool = false
    ) -> Fields? {
        guard case .mapping(let mapping) = node else {
            if let path {
                error(node.position, "'\(path)' must be \(expected); found \(node.found(redacted: sensitive))")
            } else {
                error(
                    node.position,
                    "a manifest must be a mapping with keys id, source_domain, pull; found \(node.found())"
                )
            }
            return nil
        }
        var entries: [Entry] = []
        for entry in self.entries(of: mapping, path: path, sensitive: sensitive) {
            guard validKeys.contains(entry.key) else {
                error(
                    entry.keyPosition,
                    Self.unknownKeyMessage(entry, in: path, validKeys: validKeys, sensitive: sensitive)
                )
                continue
            }
            entries.append(entry)
        }
        return Fields(path: path, position: node.position, entries: entries)
    }

    /// "unknown key 'pull.tiemout'; valid keys: …; did you mean 'timeout'?". Under `pull.auth`
    /// the key itself is left out: a misplaced secret must not be echoed.
    private static func unknownKeyMessage(
        _ entry: Entry,
        in path: String?,
        validKeys: [String],
        sensitive: Bool
    )
        -> String
    {
        let valid = validKeys.joined(separator: ", ")
        let suggestion = KeySuggestion.closest(to: entry.key, in: validKeys).map { "; did you mean '\($0)'?" } ?? ""
        if sensitive, let path {
            return "unknown key in '\(path)'; valid keys: \(valid)\(suggestion)"
        }
        return "unknown key \(Quote.text(entry.path)); valid keys: \(valid)\(suggestion)"
    }

    /// The entries of a mapping, in order. Reports keys that are not scalars, and repeated keys
    /// (at each later occurrence, as the composer marked them; the later value is the one kept).
    mutating func entries(of mapping: Node.Mapping, path: String?, sensitive: Bool) -> [Entry] {
        var result: [Entry?] = []
        var latest: [String: Int] = [:]
        for pair in mapping {
            let keyPosition = pair.key.position
            guard case .scalar(let keyScalar) = pair.key else {
                let place = path.map { "'\($0)'" } ?? "a manifest"
                error(keyPosition, "keys in \(place) must be names; found \(pair.key.found(redacted: sensitive))")
                continue
            }
            let key = keyScalar.string
            if let first = pair.firstDefinition {
                let place =
                    sensitive ? "duplicate key in '\(path ?? "")'" : "duplicate key \(Quote.text(Self.join(path, key)))"
                error(keyPosition, "\(place); first defined at line \(first.line), column \(first.column)")
            }
            if let earlier = latest[key] { result[earlier] = nil }
            latest[key] = result.count
            result.append(Entry(key: key, keyPosition: keyPosition, value: pair.value, path: Self.join(path, key)))
        }
        return result.compactMap { $0 }
    }

    /// A string value: any scalar but null. `sensitive` keeps the value out of messages.
    mutating func string(_ entry: Entry, expected: String = "a string", sensitive: Bool = false) -> String? {
        guard case .scalar(let scalar) = entry.value, ScalarMeaning(scalar) != .null else {
            error(
                entry.value.position,
                "'\(entry.path)' must be \(expected); found \(entry.value.found(redacted: sensitive))"
            )
            return nil
        }
        return scalar.string
    }

    mutating func bool(_ entry: Entry) -> Bool? {
        guard case .scalar(let scalar) = entry.value, case .bool(let value) = ScalarMeaning(scalar) else {
            error(entry.value.position, "'\(entry.path)' must be true or false; found \(entry.value.found())")
            return nil
        }
        return value
    }

    /// An integer in `range`; `meaning` says what it is.
    mutating func integer(_ entry: Entry, in range: ClosedRange<Int>, meaning: String? = nil) -> Int? {
        integer(entry.value, path: entry.path, in: range, meaning: meaning)
    }

    mutating func integer(_ node: Node, path: String, in range: ClosedRange<Int>, meaning: String?) -> Int? {
        if case .scalar(let scalar) = node, case .integer(let value) = ScalarMeaning(scalar), range.contains(value) {
            return value
        }
        let bounds =
            range.upperBound == .max
            ? "an integer of at least \(range.lowerBound)"
            : "an integer from \(range.lowerBound) to \(range.upperBound)"
        let what = meaning.map { " (\($0))" } ?? ""
        error(node.position, "'\(path)' must be \(bounds)\(what); found \(node.found())")
        return nil
    }

    /// A list of distinct integers in `range`.
    mutating func integerList(
        _ entry: Entry,
        in range: ClosedRange<Int>,
        meaning: String,
        listExample: String,
        repeatNoun: String,
        refusing refused: (value: Int, reason: String)? = nil
    ) -> [Int]? {
        guard case .sequence(let sequence) = entry.value else {
            error(entry.value.position, "'\(entry.path)' must be \(listExample); found \(entry.value.found())")
            return nil
        }
        var values: [Int] = []
        var valid = true
        for (index, element) in sequence.enumerated() {
            let path = "\(entry.path)[\(index)]"
            guard let value = integer(element, path: path, in: range, meaning: meaning) else {
                valid = false
                continue
            }
            if let refused, value == refused.value {
                error(element.position, "'\(path)' cannot be \(value); \(refused.reason)")
                valid = false
            } else if values.contains(value) {
                error(element.position, "'\(path)' repeats \(repeatNoun) \(value)")
                valid = false
            } else {
                values.append(value)
            }
        }
        return valid ? values : nil
    }

    /// A duration (``ManifestDuration``).
    mutating func duration(_ entry: Entry) -> Duration? {
        guard case .scalar(let scalar) = entry.value, ScalarMeaning(scalar) != .null else {
            error(
                entry.value.position,
                "'\(entry.path)' must be a duration; \(ManifestDuration.hint); found \(entry.value.found())"
            )
            return nil
        }
        guard let value = ManifestDuration.parse(scalar.string, plain: scalar.style == .plain) else {
            error(
                entry.value.position,
                "invalid duration \(Quote.text(scalar.string)) for '\(entry.path)'; \(ManifestDuration.hint)"
            )
            return nil
        }
        return value
    }

    /// The position of byte `offset` inside a scalar's value: exact when the scalar is plain and
    /// written on one line (so the text is verbatim), else the scalar's start.
    func position(in node: Node, byteOffset offset: Int) -> SourcePosition {
        guard case .scalar(let scalar) = node, let start = scalar.verbatimStart else { return node.position }
        var characters = 0
        for byte in scalar.string.utf8.prefix(offset) where byte & 0xC0 != 0x80 { characters += 1 }
        return SourcePosition(line: start.line, column: start.column + characters)
    }
}
