import PartnerAdapterKit
import PullSyncKernel
import StrictYAML

/// The validated `pull` section.
struct PullSection {
    var enabled = true
    /// The policy's defaults, overridden by what the section gives (`consent` is top-level).
    var policy = PartnerPolicy(allowedHosts: AllowedHosts([]))
    var adapter: PartnerManifest.Adapter?
    var secrets: [PartnerManifest.SecretUse] = []
    var adapterPosition: SourcePosition?
}

extension ManifestValidator {
    mutating func validatePull(_ entry: Entry) -> PullSection? {
        guard let pull = fields(of: entry) else { return nil }
        let before = problemCount
        var section = PullSection()

        if let entry = pull["enabled"], let value = bool(entry) { section.enabled = value }

        let hosts = pull.required("allowed_hosts", in: &self).flatMap { allowedHosts($0) }

        var url: PartnerURL?
        if let entry = pull.required("url", in: &self) { url = partnerURL(entry, allowedHosts: hosts) }

        // A compiled adapter speaks its own protocol: the manifest-driven request keys don't apply.
        var request: RequestSection?
        var compiled: CompiledAdapterSection?
        var uidPath = ["uid"]
        var notFoundStatuses: Set<Int> = [404]
        if let entry = pull["adapter"] {
            compiled = validateCompiledAdapter(entry, in: pull)
            section.adapterPosition = entry.value.position
        } else {
            if let params = pull["params"] {
                let adapterNames = self.adapterNames
                error(
                    params.keyPosition,
                    "'pull.params' gives parameters to a compiled adapter, but 'pull.adapter' is not set; "
                        + "name one (\(adapterNames)) or remove 'pull.params'"
                )
            }
            request = validateRequest(pull)
            if let entry = pull["response"], let response = fields(of: entry) {
                if let entry = response["uid_field"], let value = fieldPath(entry) { uidPath = value }
                if let entry = response["not_found_statuses"],
                    let statuses = integers(
                        entry,
                        meaning: "an HTTP status code",
                        noun: "status",
                        refusing: (200, "a 200 response carries the UID")
                    )
                {
                    notFoundStatuses = Set(statuses)
                }
            }
        }

        if let entry = pull["timeout"], let value = duration(entry) { section.policy.timeout = value }
        if let entry = pull["ttl"], let value = duration(entry) { section.policy.ttl = value }
        if let entry = pull["rate_limit"], let fields = fields(of: entry) {
            if let entry = fields["calls"], let value = integer(entry) { section.policy.rateLimit.calls = value }
            if let entry = fields["window"], let value = duration(entry) { section.policy.rateLimit.window = value }
        }
        if let entry = pull["budget_per_second"] {
            switch entry.value.meaning {
            case .integer(let value) where value > 0: section.policy.budgetPerSecond = Double(value)
            case .number(let value) where value > 0: section.policy.budgetPerSecond = value
            default: mismatch(entry)
            }
        }

        guard problemCount == before, let hosts, let url else { return nil }
        section.policy.allowedHosts = hosts
        if let compiled {
            section.adapter = .compiled(.init(name: compiled.name, url: url, parameters: compiled.parameters))
            section.secrets = compiled.secrets
        } else if let request {
            section.adapter = .http(
                HTTPPullAdapter.Configuration(
                    url: url,
                    query: request.query,
                    headers: request.headers,
                    auth: request.auth,
                    uidPath: uidPath,
                    notFoundStatuses: notFoundStatuses
                )
            )
            section.secrets = request.secrets
        }
        return section.adapter == nil ? nil : section
    }

    /// A partner URL (`pull.url`, `optout.url`) whose host is one of `allowedHosts` (when they
    /// are known: they may be invalid themselves).
    mutating func partnerURL(_ entry: Entry, allowedHosts: AllowedHosts?) -> PartnerURL? {
        guard let string = string(entry, expected: Self.key(entry).expected) else { return nil }
        do {
            let parsed = try PullURLParser.parse(string, key: entry.path)
            guard allowedHosts?.contains(parsed.host) ?? true else {
                error(
                    entry.value.position,
                    "'\(entry.path)' host \(Quote.text(parsed.host)) is not in 'pull.allowed_hosts'; "
                        + "add it there or fix the URL"
                )
                return nil
            }
            return parsed
        } catch {
            self.error(entry.value.position, error.message)
            return nil
        }
    }

    /// A dot path of object keys, like `data.user.id`.
    mutating func fieldPath(_ entry: Entry) -> [String]? {
        guard let value = string(entry) else { return nil }
        let segments = value.split(separator: ".", omittingEmptySubsequences: false)
        guard !segments.contains(where: \.isEmpty) else {
            mismatch(entry, "a dot path of object keys like uid or data.user.id")
            return nil
        }
        return segments.map(String.init)
    }

    /// `pull.allowed_hosts`: a non-empty list of distinct DNS or loopback names.
    private mutating func allowedHosts(_ entry: Entry) -> AllowedHosts? {
        guard case .list(let elements) = entry.value.content else {
            mismatch(entry)
            return nil
        }
        guard !elements.isEmpty else {
            error(entry.value.position, "'\(entry.path)' must list at least one host")
            return nil
        }
        var hosts: [String] = []
        var valid = true
        for (index, element) in elements.enumerated() {
            let path = "\(entry.path)[\(index)]"
            let host = element.text.map(PullURLParser.normalizeHost) ?? ""
            if !HostName.isValidDNSName(host) && !HostName.isLoopback(host) {
                mismatch(element, path, "a host name like sync.acme.example (no scheme, port or path)")
                valid = false
            } else if hosts.contains(host) {
                error(element.position, "'\(path)' repeats \(Quote.text(host))")
                valid = false
            } else {
                hosts.append(host)
            }
        }
        return valid ? AllowedHosts(hosts) : nil
    }
}
