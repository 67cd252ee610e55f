import PartnerAdapterKit
import PullSyncKernel
import StrictYAML

/// Walks one composed manifest, reporting every problem (it keeps going after each one) and
/// building the ``PartnerManifest`` when there are none. Which keys a mapping may hold, what their
/// values must be and how messages say so come from the table of keys (``ManifestKeys``).
struct ManifestValidator {
    /// A problem, where it is.
    struct Problem {
        var position: SourcePosition
        var message: String
    }

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

    /// "'pull.ttl' must be `expected`; found a list", at the value. The value is described by its
    /// kind only when `redacted` (it may be a secret).
    mutating func mismatch(_ node: Node, _ path: String, _ expected: String, redacted: Bool = false) {
        error(node.position, "'\(path)' must be \(expected); found \(node.found(redacted: redacted))")
    }

    /// ``mismatch(_:_:_:redacted:)`` for an entry, saying what its key's row in the table expects.
    mutating func mismatch(_ entry: Entry, _ expected: String? = nil) {
        mismatch(entry.value, entry.path, expected ?? Self.key(entry).expected)
    }

    /// Problems found, kept or not.
    var problemCount: Int { problems.count + omitted }

    /// The row of the table that describes `entry`'s key.
    static func key(_ entry: Entry) -> ManifestKeys.Key {
        ManifestKeys.byPath[entry.path] ?? ManifestKeys.Key(path: entry.path, type: .string)
    }

    // MARK: - The document

    mutating func validate(_ root: Node) -> PartnerManifest? {
        guard case .mapping = root.content else {
            if root.meaning == .null {
                error(.start, "empty manifest; expected a mapping with keys id, source_domain, pull")
            } else {
                error(
                    root.position,
                    "a manifest must be a mapping with keys id, source_domain, pull; found \(root.found())"
                )
            }
            return nil
        }
        let top = fields(of: root, path: nil)

        if let entry = top.required("id", in: &self), let value = string(entry) {
            if Partner.reservedIDs.contains(value) {
                let reserved = Partner.reservedIDs.sorted().joined(separator: ", ")
                error(
                    entry.value.position,
                    "'id' \(Quote.text(value)) is reserved; choose another (reserved: \(reserved))"
                )
            } else if Partner.isValidID(value) {
                id = (value, entry.value.position)
            } else {
                mismatch(entry, "1 to 32 characters of a-z, 0-9, '_' and '-'")
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

        if let entry = top.required("source_domain", in: &self), let value = string(entry) {
            if HostName.isValidDNSName(value) {
                sourceDomain = (HostName.normalize(value), entry.value.position)
            } else {
                mismatch(entry, "a DNS name like acme.example")
            }
        }

        let pull = top.required("pull", in: &self).flatMap { validatePull($0) }

        var consent = PartnerConsentRequirements()
        if let entry = top["consent"], let fields = fields(of: entry) {
            if let entry = fields["tcf_vendor_id"] { consent.tcfVendorID = integer(entry) }
            if let entry = fields["gpp_skip_sections"] {
                consent.gppSkipSections = Set(integers(entry, meaning: "a GPP section ID", noun: "section") ?? [])
            }
        }

        var eid: (source: String?, agentType: Int?, matchMethod: Int?) = (nil, nil, nil)
        if let entry = top["eid"], let fields = fields(of: entry) {
            if let entry = fields["source"], let value = string(entry, expected: Self.key(entry).expected) {
                if HostName.isValidDNSName(value) { eid.source = value } else { mismatch(entry) }
            }
            eid.agentType = fields["atype"].flatMap { integer($0) }
            eid.matchMethod = fields["mm"].flatMap { integer($0) }
        }

        var optOut: (configuration: HTTPPullAdapter.Configuration, secrets: [PartnerManifest.SecretUse])?
        if let entry = top["optout"] {
            optOut = validateOptOut(entry, allowedHosts: pull.map(\.policy.allowedHosts))
        }

        guard problemCount == 0, let id, let sourceDomain, var pull, let adapter = pull.adapter else { return nil }
        pull.policy.consent = consent
        return PartnerManifest(
            path: path,
            id: id.value,
            name: name ?? id.value,
            sourceDomain: sourceDomain.value,
            pullEnabled: pull.enabled,
            policy: pull.policy,
            adapter: adapter,
            secrets: pull.secrets + (optOut?.secrets ?? []),
            optOut: optOut?.configuration,
            eid: EIDMapping(
                source: eid.source ?? sourceDomain.value,
                agentType: eid.agentType ?? 3,
                matchMethod: eid.matchMethod
            ),
            idLocation: (id.position.line, id.position.column),
            sourceDomainLocation: (sourceDomain.position.line, sourceDomain.position.column),
            adapterLocation: pull.adapterPosition.map { ($0.line, $0.column) }
        )
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
        var validKeys: [String]
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

    /// `entry`'s value as a mapping whose keys are its key's in the table (or `validKeys`); reports
    /// anything else. A `sensitive` value (under `pull.auth`, a secret reference) is never repeated.
    mutating func fields(
        of entry: Entry,
        validKeys: [String]? = nil,
        expected: String? = nil,
        sensitive: Bool = false
    ) -> Fields? {
        guard case .mapping = entry.value.content else {
            mismatch(entry.value, entry.path, expected ?? Self.key(entry).expected, redacted: sensitive)
            return nil
        }
        return fields(of: entry.value, path: entry.path, validKeys: validKeys, sensitive: sensitive)
    }

    /// A mapping's entries whose keys are among `validKeys` (by default, the table's keys under
    /// `path`); reports unknown keys, with the closest valid one: "unknown key 'pull.tiemout';
    /// valid keys: …; did you mean 'timeout'?". A sensitive key is not repeated.
    mutating func fields(of node: Node, path: String?, validKeys: [String]? = nil, sensitive: Bool = false) -> Fields {
        let validKeys = validKeys ?? ManifestKeys.names(under: path)
        var entries: [Entry] = []
        for entry in self.entries(of: node, path: path, sensitive: sensitive) {
            guard validKeys.contains(entry.key) else {
                // Worded only while problems are kept: a file of 100,000 unknown keys costs no
                // 100,000 suggestions.
                error(entry.keyPosition, Self.unknownKey(entry, in: path, validKeys: validKeys, sensitive: sensitive))
                continue
            }
            entries.append(entry)
        }
        return Fields(path: path, position: node.position, validKeys: validKeys, entries: entries)
    }

    /// "unknown key 'pull.tiemout'; valid keys: …; did you mean 'timeout'?"
    private static func unknownKey(_ entry: Entry, in path: String?, validKeys: [String], sensitive: Bool) -> String {
        let suggestion = KeySuggestion.closest(to: entry.key, in: validKeys).map { "; did you mean '\($0)'?" } ?? ""
        let key = sensitive ? "in '\(path ?? "")'" : Quote.text(entry.path)
        return "unknown key \(key); valid keys: \(validKeys.joined(separator: ", "))\(suggestion)"
    }

    /// The entries of a mapping, in order. Reports keys that are not scalars, and repeated keys
    /// (at each later occurrence, naming the first; the later value is the one kept).
    mutating func entries(of node: Node, path: String?, sensitive: Bool = false) -> [Entry] {
        guard case .mapping(let pairs) = node.content else { return [] }
        var result: [Entry?] = []
        var seen: [String: (first: SourcePosition, latest: Int)] = [:]
        for pair in pairs {
            let keyPosition = pair.key.position
            guard case .scalar(let key, _) = pair.key.content else {
                let place = path.map { "'\($0)'" } ?? "a manifest"
                error(keyPosition, "keys in \(place) must be names; found \(pair.key.found(redacted: sensitive))")
                continue
            }
            if let (first, earlier) = seen[key] {
                let place = sensitive ? "in '\(path ?? "")'" : Quote.text(Self.join(path, key))
                error(
                    keyPosition,
                    "duplicate key \(place); first defined at line \(first.line), column \(first.column)"
                )
                result[earlier] = nil
            }
            seen[key] = (seen[key]?.first ?? keyPosition, result.count)
            result.append(Entry(key: key, keyPosition: keyPosition, value: pair.value, path: Self.join(path, key)))
        }
        return result.compactMap { $0 }
    }

    /// A string value: any scalar but null.
    mutating func string(_ entry: Entry, expected: String = "a string", redacted: Bool = false) -> String? {
        if let text = entry.value.text { return text }
        mismatch(entry.value, entry.path, expected, redacted: redacted)
        return nil
    }

    mutating func bool(_ entry: Entry) -> Bool? {
        if case .bool(let value)? = entry.value.meaning { return value }
        mismatch(entry, "true or false")
        return nil
    }

    /// An integer in the key's range (``ManifestKeys``), or in `range`, described as `expected`.
    mutating func integer(_ entry: Entry, in range: ClosedRange<Int>? = nil, expected: String? = nil) -> Int? {
        var bounds = range ?? Int.min...Int.max
        if range == nil, case .integer(let keyRange) = Self.key(entry).type { bounds = keyRange }
        if case .integer(let value)? = entry.value.meaning, bounds.contains(value) { return value }
        mismatch(entry, expected)
        return nil
    }

    /// A list of distinct integers in the key's range (``ManifestKeys``), each `meaning` something
    /// (a `noun` when repeated); `refused` is in the range but not allowed.
    mutating func integers(
        _ entry: Entry,
        meaning: String,
        noun: String,
        refusing refused: (value: Int, reason: String)? = nil
    ) -> [Int]? {
        guard case .list(let elements) = entry.value.content, case .listOfIntegers(let range) = Self.key(entry).type
        else {
            mismatch(entry)
            return nil
        }
        var values: [Int] = []
        var valid = true
        for (index, element) in elements.enumerated() {
            let path = "\(entry.path)[\(index)]"
            let item = Entry(key: entry.key, keyPosition: element.position, value: element, path: path)
            let expected = "an integer from \(range.lowerBound) to \(range.upperBound) (\(meaning))"
            guard let value = integer(item, in: range, expected: expected) else {
                valid = false
                continue
            }
            if let refused, value == refused.value {
                error(element.position, "'\(path)' cannot be \(value); \(refused.reason)")
            } else if values.contains(value) {
                error(element.position, "'\(path)' repeats \(noun) \(value)")
            } else {
                values.append(value)
                continue
            }
            valid = false
        }
        return valid ? values : nil
    }

    /// A duration (``ManifestDuration``) in the key's range (``ManifestKeys``), if it has one.
    mutating func duration(_ entry: Entry) -> Duration? {
        guard case .scalar(let text, let style) = entry.value.content, entry.value.meaning != .null else {
            mismatch(entry, "a duration; \(ManifestDuration.hint)")
            return nil
        }
        guard let value = ManifestDuration.parse(text, plain: style == .plain) else {
            error(
                entry.value.position,
                "invalid duration \(Quote.text(text)) for '\(entry.path)'; \(ManifestDuration.hint)"
            )
            return nil
        }
        if case .duration(let range) = Self.key(entry).type, !range.contains(value) {
            mismatch(entry)
            return nil
        }
        return value
    }

    /// The position of byte `offset` inside a scalar's value: exact when the scalar is plain and
    /// written on one line (so the text is verbatim), else the scalar's start.
    func position(in node: Node, byteOffset offset: Int) -> SourcePosition {
        guard case .scalar(let string, _) = node.content, let start = node.verbatimStart else { return node.position }
        var characters = 0
        for byte in string.utf8.prefix(offset) where byte & 0xC0 != 0x80 { characters += 1 }
        return SourcePosition(line: start.line, column: start.column + characters)
    }
}
