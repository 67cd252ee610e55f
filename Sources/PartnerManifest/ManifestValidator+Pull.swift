import PullSyncKernel
import PartnerAdapterKit

/// The validated `pull` section.
struct PullSection {
    var enabled: Bool
    var allowedHosts: AllowedHosts
    var ttl: Duration
    var rateLimit: RateLimitPolicy
    var timeout: Duration
    var budgetPerSecond: Double?
    var adapter: PartnerManifest.Adapter
    var secrets: [PartnerManifest.SecretUse]
    var adapterPosition: SourcePosition?
}

extension ManifestValidator {
    static let maxTimeout = Duration.seconds(30)

    mutating func validatePull(_ node: Node) -> PullSection? {
        guard
            let pull = fields(
                of: node,
                path: "pull",
                validKeys: Self.pullKeys,
                expected: "a mapping with keys url, allowed_hosts and others"
            )
        else { return nil }
        let before = problemCount

        var enabled = true
        if let entry = pull["enabled"], let value = bool(entry) { enabled = value }

        let hosts = pull.required("allowed_hosts", in: &self).flatMap { allowedHosts($0) }

        var url: PartnerURL?
        if let entry = pull.required("url", in: &self),
            let string = string(entry, expected: "a URL string like https://sync.acme.example/pull")
        {
            do {
                let parsed = try PullURLParser.parse(string, key: entry.path)
                if let hosts, !hosts.contains(parsed.host) {
                    error(
                        entry.value.position,
                        "'\(entry.path)' host \(Quote.text(parsed.host)) is not in 'pull.allowed_hosts'; "
                            + "add it there or fix the URL"
                    )
                } else {
                    url = parsed
                }
            } catch {
                self.error(entry.value.position, error.message)
            }
        }

        // A compiled adapter speaks its own protocol: the manifest-driven request keys don't apply.
        var request: RequestSection?
        var compiled: CompiledAdapterSection?
        var uidPath = ["uid"]
        var notFoundStatuses: Set<Int> = [404]
        if let entry = pull["adapter"] {
            compiled = validateCompiledAdapter(entry, in: pull)
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
            if let response = validateResponse(pull) {
                uidPath = response.uidPath
                notFoundStatuses = response.notFoundStatuses
            }
        }

        var timeout = Duration.seconds(1)
        if let entry = pull["timeout"], let value = duration(entry) {
            if value <= .zero || value > Self.maxTimeout {
                error(
                    entry.value.position,
                    "'\(entry.path)' must be more than 0 and at most 30s; found \(entry.value.found())"
                )
            } else {
                timeout = value
            }
        }

        var ttl = Duration.seconds(86_400)
        if let entry = pull["ttl"], let value = durationOfAtLeastOneSecond(entry) { ttl = value }

        var rateLimit = RateLimitPolicy()
        if let entry = pull["rate_limit"],
            let fields = fields(
                of: entry.value,
                path: entry.path,
                validKeys: Self.rateLimitKeys,
                expected: "a mapping with keys calls, window"
            )
        {
            if let entry = fields["calls"], let value = integer(entry, in: 1...Int.max) { rateLimit.calls = value }
            if let entry = fields["window"], let value = durationOfAtLeastOneSecond(entry) { rateLimit.window = value }
        }

        var budget: Double?
        if let entry = pull["budget_per_second"] {
            switch entry.value {
            case .scalar(let scalar):
                switch ScalarMeaning(scalar) {
                case .integer(let value) where value > 0: budget = Double(value)
                case .number(let value) where value > 0 && value.isFinite: budget = value
                default: break
                }
            default: break
            }
            if budget == nil {
                error(
                    entry.value.position,
                    "'\(entry.path)' must be a number greater than 0 (calls per second to this partner); "
                        + "found \(entry.value.found())"
                )
            }
        }

        guard problemCount == before, let hosts, let url else { return nil }
        let adapter: PartnerManifest.Adapter
        var secrets: [PartnerManifest.SecretUse] = []
        if let compiled {
            adapter = .compiled(.init(name: compiled.name, url: url, parameters: compiled.parameters))
            secrets = compiled.secrets
        } else if let request {
            adapter = .http(
                HTTPPullAdapter.Configuration(
                    url: url,
                    query: request.query,
                    headers: request.headers,
                    auth: request.auth,
                    uidPath: uidPath,
                    notFoundStatuses: notFoundStatuses
                )
            )
            if let reference = request.auth.reference, let position = request.secretPosition {
                let key = request.auth == .bearer(reference) ? "pull.auth.bearer" : "pull.auth.header_token"
                secrets = [.init(reference: reference, key: key, line: position.line, column: position.column)]
            }
        } else {
            return nil
        }
        return PullSection(
            enabled: enabled,
            allowedHosts: hosts,
            ttl: ttl,
            rateLimit: rateLimit,
            timeout: timeout,
            budgetPerSecond: budget,
            adapter: adapter,
            secrets: secrets,
            adapterPosition: compiled == nil ? nil : pull["adapter"]?.value.position
        )
    }

    /// `pull.response`: where the UID is, and which statuses mean "not found".
    private mutating func validateResponse(_ pull: Fields) -> (uidPath: [String], notFoundStatuses: Set<Int>)? {
        var uidPath = ["uid"]
        var notFoundStatuses: Set<Int> = [404]
        guard let entry = pull["response"] else { return (uidPath, notFoundStatuses) }
        guard
            let response = fields(
                of: entry.value,
                path: entry.path,
                validKeys: Self.responseKeys,
                expected: "a mapping with keys uid_field, not_found_statuses"
            )
        else { return nil }
        let before = problemCount
        if let entry = response["uid_field"], let value = fieldPath(entry) {
            uidPath = value
        }
        if let entry = response["not_found_statuses"],
            let statuses = integerList(
                entry,
                in: 100...599,
                meaning: "an HTTP status code",
                listExample: "a list of HTTP status codes like [404]",
                repeatNoun: "status",
                refusing: (200, "a 200 response carries the UID")
            )
        {
            notFoundStatuses = Set(statuses)
        }
        return problemCount == before ? (uidPath, notFoundStatuses) : nil
    }

    /// A dot path of object keys, like `data.user.id`.
    mutating func fieldPath(_ entry: Entry) -> [String]? {
        guard let value = string(entry) else { return nil }
        let segments = value.split(separator: ".", omittingEmptySubsequences: false)
        guard !segments.contains(where: \.isEmpty) else {
            error(
                entry.value.position,
                "'\(entry.path)' must be a dot path of object keys like uid or data.user.id; "
                    + "found \(Quote.text(value))"
            )
            return nil
        }
        return segments.map(String.init)
    }

    private mutating func durationOfAtLeastOneSecond(_ entry: Entry) -> Duration? {
        guard let value = duration(entry) else { return nil }
        guard value >= .seconds(1) else {
            error(entry.value.position, "'\(entry.path)' must be at least 1s; found \(entry.value.found())")
            return nil
        }
        return value
    }

    /// `pull.allowed_hosts`: a non-empty list of distinct DNS or loopback names.
    private mutating func allowedHosts(_ entry: Entry) -> AllowedHosts? {
        guard case .sequence(let sequence) = entry.value else {
            error(
                entry.value.position,
                "'\(entry.path)' must be a list of host names like [sync.acme.example]; found \(entry.value.found())"
            )
            return nil
        }
        guard !sequence.isEmpty else {
            error(entry.value.position, "'\(entry.path)' must list at least one host")
            return nil
        }
        var hosts: [String] = []
        var valid = true
        for (index, element) in sequence.enumerated() {
            let path = "\(entry.path)[\(index)]"
            let expected = "a host name like sync.acme.example (no scheme, port or path)"
            guard case .scalar(let scalar) = element, ScalarMeaning(scalar) != .null else {
                error(element.position, "'\(path)' must be \(expected); found \(element.found())")
                valid = false
                continue
            }
            let host = PullURLParser.normalizeHost(scalar.string)
            guard HostName.isValidDNSName(host) || HostName.isLoopback(host) else {
                error(element.position, "'\(path)' must be \(expected); found \(Quote.text(scalar.string))")
                valid = false
                continue
            }
            if hosts.contains(host) {
                error(element.position, "'\(path)' repeats \(Quote.text(host))")
                valid = false
                continue
            }
            hosts.append(host)
        }
        return valid ? AllowedHosts(hosts) : nil
    }
}
