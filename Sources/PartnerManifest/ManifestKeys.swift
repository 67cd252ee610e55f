/// Every key a manifest may hold, with the type of its value: the one table the validator's key
/// lists come from, and that the JSON Schema (`schemas/partner-manifest.schema.json`) and the
/// reference in `docs/manifest-format.md` are checked against (`SchemaTests`, `DocumentationTests`).
enum ManifestKeys {
    enum ValueType: Equatable, Sendable {
        case string
        case boolean
        case integer
        case number
        /// `500ms`, `2s`, …: ``ManifestDuration``.
        case duration
        case mapping
        case listOfStrings
        case listOfIntegers
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
    }

    /// In the order messages list them.
    static let all: [Key] = [
        Key(path: "id", type: .string, required: true),
        Key(path: "name", type: .string),
        Key(path: "source_domain", type: .string, required: true),
        Key(path: "pull", type: .mapping, required: true),
        Key(path: "consent", type: .mapping),
        Key(path: "pull.enabled", type: .boolean),
        Key(path: "pull.url", type: .string, required: true),
        Key(path: "pull.allowed_hosts", type: .listOfStrings, required: true),
        Key(path: "pull.adapter", type: .string),
        Key(path: "pull.params", type: .mapping),
        Key(path: "pull.query", type: .templates),
        Key(path: "pull.headers", type: .templates),
        Key(path: "pull.auth", type: .mapping),
        Key(path: "pull.response", type: .mapping),
        Key(path: "pull.timeout", type: .duration),
        Key(path: "pull.ttl", type: .duration),
        Key(path: "pull.rate_limit", type: .mapping),
        Key(path: "pull.budget_per_second", type: .number),
        Key(path: "pull.auth.bearer", type: .secretReference),
        Key(path: "pull.auth.header_token", type: .secretReference),
        Key(path: "pull.response.uid_field", type: .string),
        Key(path: "pull.response.not_found_statuses", type: .listOfIntegers),
        Key(path: "pull.rate_limit.calls", type: .integer),
        Key(path: "pull.rate_limit.window", type: .duration),
        Key(path: "consent.tcf_vendor_id", type: .integer),
        Key(path: "consent.gpp_skip_sections", type: .listOfIntegers),
    ]

    /// The keys of a secret reference; exactly one is given.
    static let secretReferenceKeys = ["env", "file"]

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
