import PullSyncKernel

/// Every key a manifest may hold, with the type of its value, its bounds and how messages say
/// what it must be: the one table the validator reads keys and checks values by, and that the
/// JSON Schema (`schemas/partner-manifest.schema.json`) and the reference in
/// `docs/manifest-format.md` are checked against (`SchemaTests`, `DocumentationTests`).
enum ManifestKeys {
    enum ValueType: Equatable, Sendable {
        case string
        case boolean
        /// In the range.
        case integer(ClosedRange<Int>)
        /// Greater than 0.
        case number
        /// `500ms`, `2s`, …: ``ManifestDuration``, in the range.
        case duration(ClosedRange<Duration>)
        case mapping
        case listOfStrings
        /// Distinct, each in the range.
        case listOfIntegers(ClosedRange<Int>)
        /// Names to templates (`query`, `headers`).
        case templates
        /// `{ env: NAME }` or `{ file: PATH }`: keys ``secretReferenceKeys``.
        case secretReference
    }

    struct Key: Sendable {
        /// Dotted, from the top: `pull.rate_limit.calls`.
        var path: String
        var type: ValueType
        var required = false
        /// What a valid value is, for "'pull.ttl' must be …" messages.
        var expected = "a string"
    }

    /// In the order messages list them.
    static let all: [Key] = [
        Key(path: "id", type: .string, required: true),
        Key(path: "name", type: .string),
        Key(path: "source_domain", type: .string, required: true),
        Key(
            path: "pull",
            type: .mapping,
            required: true,
            expected: "a mapping with keys url, allowed_hosts and others"
        ),
        Key(path: "consent", type: .mapping, expected: "a mapping with keys tcf_vendor_id, gpp_skip_sections"),
        Key(path: "eid", type: .mapping, expected: "a mapping with keys source, atype, mm"),
        Key(path: "optout", type: .mapping, expected: "a mapping with keys url, method, query, headers, auth"),
        Key(path: "pull.enabled", type: .boolean, expected: "true or false"),
        Key(
            path: "pull.url",
            type: .string,
            required: true,
            expected: "a URL string like https://sync.acme.example/pull"
        ),
        Key(
            path: "pull.allowed_hosts",
            type: .listOfStrings,
            required: true,
            expected: "a list of host names like [sync.acme.example]"
        ),
        Key(path: "pull.adapter", type: .string),
        Key(path: "pull.params", type: .mapping),
        Key(
            path: "pull.query",
            type: .templates,
            expected: "a mapping of parameter names to templates like ec_id: \"{ec_id}\""
        ),
        Key(path: "pull.headers", type: .templates, expected: "a mapping of header names to templates"),
        Key(path: "pull.auth", type: .mapping, expected: "a mapping with one of bearer, header_token"),
        Key(path: "pull.response", type: .mapping, expected: "a mapping with keys uid_field, not_found_statuses"),
        Key(
            path: "pull.timeout",
            type: .duration(.attosecond...(.seconds(30))),
            expected: "more than 0 and at most 30s"
        ),
        Key(path: "pull.ttl", type: .duration(.seconds(1)...(.seconds(Int64.max))), expected: "at least 1s"),
        Key(path: "pull.rate_limit", type: .mapping, expected: "a mapping with keys calls, window"),
        Key(
            path: "pull.budget_per_second",
            type: .number,
            expected: "a number greater than 0 (calls per second to this partner)"
        ),
        Key(path: "pull.auth.bearer", type: .secretReference),
        Key(path: "pull.auth.header_token", type: .secretReference),
        Key(
            path: "pull.response.uid_field",
            type: .string,
            expected: "a dot path of object keys like uid or data.user.id"
        ),
        Key(
            path: "pull.response.not_found_statuses",
            type: .listOfIntegers(100...599),
            expected: "a list of HTTP status codes like [404]"
        ),
        Key(path: "pull.rate_limit.calls", type: .integer(1...Int.max), expected: "an integer of at least 1"),
        Key(
            path: "pull.rate_limit.window",
            type: .duration(.seconds(1)...(.seconds(Int64.max))),
            expected: "at least 1s"
        ),
        Key(
            path: "consent.tcf_vendor_id",
            type: .integer(1...65_535),
            expected: "an integer from 1 to 65535 (the IAB TCF vendor ID)"
        ),
        Key(
            path: "consent.gpp_skip_sections",
            type: .listOfIntegers(1...255),
            expected: "a list of GPP section IDs like [7, 8]"
        ),
        Key(
            path: "optout.url",
            type: .string,
            required: true,
            expected: "a URL string like https://sync.acme.example/optout"
        ),
        Key(path: "optout.method", type: .string, expected: "GET, POST or DELETE"),
        Key(
            path: "optout.query",
            type: .templates,
            expected: "a mapping of parameter names to templates like ec_id: \"{ec_id}\""
        ),
        Key(path: "optout.headers", type: .templates, expected: "a mapping of header names to templates"),
        Key(path: "optout.auth", type: .mapping, expected: "a mapping with one of bearer, header_token"),
        Key(path: "optout.auth.bearer", type: .secretReference),
        Key(path: "optout.auth.header_token", type: .secretReference),
        Key(path: "eid.source", type: .string, expected: "a DNS name like id5-sync.com (the EID's source)"),
        Key(
            path: "eid.atype",
            type: .integer(EIDMapping.agentTypes),
            expected: "1, 2 or 3 (AdCOM agent type: 1 browser or device, 2 in-app device ID, 3 person-based)"
        ),
        Key(
            path: "eid.mm",
            type: .integer(EIDMapping.matchMethods),
            expected: "an integer from 0 to 5 (the OpenRTB match method)"
        ),
    ]

    /// The keys of a secret reference; exactly one is given.
    static let secretReferenceKeys = ["env", "file"]

    /// The keys by path.
    static let byPath = Dictionary(uniqueKeysWithValues: all.map { ($0.path, $0) })

    /// The names of the keys directly under `parent` (`nil`: the top level), in order.
    static func names(under parent: String?) -> [String] {
        let prefix = parent.map { $0 + "." } ?? ""
        return all.compactMap { key in
            guard key.path.hasPrefix(prefix) else { return nil }
            let name = key.path.dropFirst(prefix.count)
            return name.contains(".") ? nil : String(name)
        }
    }
}

extension Duration {
    /// The shortest duration there is, for "more than 0".
    static let attosecond = Duration(secondsComponent: 0, attosecondsComponent: 1)
}
