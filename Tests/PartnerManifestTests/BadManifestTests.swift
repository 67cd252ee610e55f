import PartnerManifest
import Testing

/// One manifest with exactly one problem, and the diagnostic it must produce.
struct BadManifest: Sendable, CustomTestStringConvertible {
    var name: String
    var yaml: String
    var line: Int
    var column: Int
    var message: String
    /// Whether `message` is only the start of the message (for messages that list things).
    var isPrefix = false

    var testDescription: String { name }
}

private let base = ManifestFixtures.base
private let validKeys = "id, name, source_domain, pull, consent, eid, optout"
private let pullKeys =
    "enabled, url, allowed_hosts, adapter, params, query, headers, auth, response, timeout, ttl, rate_limit, budget_per_second"

extension BadManifest {
    static let all: [BadManifest] = structure + identity + url + hosts + request + auth + numbers + eid + optOut

    static let structure: [BadManifest] = [
        BadManifest(
            name: "empty file",
            yaml: "",
            line: 1,
            column: 1,
            message: "empty manifest; expected a mapping with keys id, source_domain, pull"
        ),
        BadManifest(
            name: "only comments",
            yaml: "# yaml-language-server: $schema=x.json\n# nothing else\n",
            line: 1,
            column: 1,
            message: "empty manifest; expected a mapping with keys id, source_domain, pull"
        ),
        BadManifest(
            name: "top-level list",
            yaml: "- id: acme\n- id: beta\n",
            line: 1,
            column: 1,
            message: "a manifest must be a mapping with keys id, source_domain, pull; found a list"
        ),
        BadManifest(
            name: "top-level scalar",
            yaml: "acme\n",
            line: 1,
            column: 1,
            message: "a manifest must be a mapping with keys id, source_domain, pull; found 'acme'"
        ),
        BadManifest(
            name: "two documents",
            yaml: base + "---\n" + base,
            line: 6,
            column: 1,
            message: "a manifest holds one YAML document; found a second one here "
                + "(remove the '---' or '...' marker, or put each partner in its own file)"
        ),
        BadManifest(
            name: "YAML syntax error",
            yaml: "id: acme\nsource_domain: [acme.example\n",
            line: 3,
            column: 1,
            message:
                "invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence at line 2, column 16)"
        ),
        BadManifest(
            name: "tab in indentation",
            yaml: "id: acme\nsource_domain: acme.example\npull:\n\turl: https://sync.acme.example/\n",
            line: 4,
            column: 1,
            message: "tab character in indentation; YAML indents with spaces only"
        ),
        BadManifest(
            name: "alias",
            yaml: base + "name: *acme\n",
            line: 6,
            column: 7,
            message: "YAML aliases ('*acme') are not allowed in manifests; write each value out in full"
        ),
        BadManifest(
            name: "tag",
            yaml: base + "name: !!str Acme\n",
            line: 6,
            column: 7,
            message: "YAML tags ('!!str') are not allowed in manifests; write the plain value"
        ),
        BadManifest(
            name: "nesting deeper than 64 levels",
            yaml: "id: " + String(repeating: "[", count: 64) + String(repeating: "]", count: 64) + "\n",
            line: 1,
            column: 68,
            message: "nesting deeper than 64 levels"
        ),
        BadManifest(
            name: "unknown top-level key, with a suggestion",
            yaml: base + "sourcedomain: acme.example\n",
            line: 6,
            column: 1,
            message: "unknown key 'sourcedomain'; valid keys: \(validKeys); did you mean 'source_domain'?"
        ),
        BadManifest(
            name: "unknown pull key, with a suggestion",
            yaml: base + "  tiemout: 1s\n",
            line: 6,
            column: 3,
            message: "unknown key 'pull.tiemout'; valid keys: \(pullKeys); did you mean 'timeout'?"
        ),
        BadManifest(
            name: "unknown pull key, nothing close",
            yaml: base + "  retries: 3\n",
            line: 6,
            column: 3,
            message: "unknown key 'pull.retries'; valid keys: \(pullKeys)"
        ),
        BadManifest(
            name: "unknown nested key",
            yaml: base + "  rate_limit:\n    calls: 5\n    burst: 2\n",
            line: 8,
            column: 5,
            message: "unknown key 'pull.rate_limit.burst'; valid keys: calls, window"
        ),
        BadManifest(
            name: "a key that is not a name",
            yaml: base + "? [a, b]\n: c\n",
            line: 6,
            column: 3,
            message: "keys in a manifest must be names; found a list"
        ),
        BadManifest(
            name: "duplicate key",
            yaml: base + "  ttl: 1h\n  ttl: 2h\n",
            line: 7,
            column: 3,
            message: "duplicate key 'pull.ttl'; first defined at line 6, column 3"
        ),
        BadManifest(
            name: "duplicate key in a flow mapping",
            yaml: base + "consent: {tcf_vendor_id: 1, tcf_vendor_id: 2}\n",
            line: 6,
            column: 29,
            message: "duplicate key 'consent.tcf_vendor_id'; first defined at line 6, column 11"
        ),
        BadManifest(
            name: "missing id",
            yaml: String(base.drop { $0 != "\n" }.dropFirst()),
            line: 1,
            column: 1,
            message: "missing required key 'id'"
        ),
        BadManifest(
            name: "missing pull",
            yaml: "id: acme\nsource_domain: acme.example\n",
            line: 1,
            column: 1,
            message: "missing required key 'pull'"
        ),
        BadManifest(
            name: "missing pull.url",
            yaml: "id: acme\nsource_domain: acme.example\npull:\n  allowed_hosts: [sync.acme.example]\n",
            line: 4,
            column: 3,
            message: "missing required key 'pull.url'"
        ),
        BadManifest(
            name: "pull is a list",
            yaml: "id: acme\nsource_domain: acme.example\npull: [https://sync.acme.example/]\n",
            line: 3,
            column: 7,
            message: "'pull' must be a mapping with keys url, allowed_hosts and others; found a list"
        ),
        BadManifest(
            name: "pull is empty",
            yaml: "id: acme\nsource_domain: acme.example\npull:\n",
            line: 3,
            column: 6,
            message: "'pull' must be a mapping with keys url, allowed_hosts and others; found nothing"
        ),
    ]

    static let identity: [BadManifest] = [
        BadManifest(
            name: "id with capitals",
            yaml: base.replacingOccurrences(of: "id: acme", with: "id: Acme"),
            line: 1,
            column: 5,
            message: "'id' must be 1 to 32 characters of a-z, 0-9, '_' and '-'; found 'Acme'"
        ),
        BadManifest(
            name: "id too long",
            yaml: base.replacingOccurrences(of: "id: acme", with: "id: " + String(repeating: "a", count: 33)),
            line: 1,
            column: 5,
            message:
                "'id' must be 1 to 32 characters of a-z, 0-9, '_' and '-'; found '\(String(repeating: "a", count: 33))'"
        ),
        BadManifest(
            name: "reserved id",
            yaml: base.replacingOccurrences(of: "id: acme", with: "id: eids"),
            line: 1,
            column: 5,
            message: "'id' 'eids' is reserved; choose another "
                + "(reserved: ec, ec-consent, eids, eids-truncated, env, synthetic, ts, version)"
        ),
        BadManifest(
            name: "id is a mapping",
            yaml: base.replacingOccurrences(of: "id: acme", with: "id: {name: acme}"),
            line: 1,
            column: 5,
            message: "'id' must be a string; found a mapping"
        ),
        BadManifest(
            name: "empty name",
            yaml: base + "name: ''\n",
            line: 6,
            column: 7,
            message: "'name' must not be empty; leave it out to use the id"
        ),
        BadManifest(
            name: "name is a list",
            yaml: base + "name: [Acme]\n",
            line: 6,
            column: 7,
            message: "'name' must be a string; found a list"
        ),
        BadManifest(
            name: "source_domain not a DNS name",
            yaml: base.replacingOccurrences(of: "source_domain: acme.example", with: "source_domain: acme_example"),
            line: 2,
            column: 16,
            message: "'source_domain' must be a DNS name like acme.example; found 'acme_example'"
        ),
        BadManifest(
            name: "source_domain is an IP address",
            yaml: base.replacingOccurrences(of: "source_domain: acme.example", with: "source_domain: 192.0.2.1"),
            line: 2,
            column: 16,
            message: "'source_domain' must be a DNS name like acme.example; found '192.0.2.1'"
        ),
    ]

    static let url: [BadManifest] = [
        BadManifest(
            name: "http to a public host",
            yaml: ManifestFixtures.withURL("http://sync.acme.example/v1/pull"),
            line: 4,
            column: 8,
            message: "'pull.url' must use https; http is accepted only for loopback hosts (localhost, 127.0.0.1, ::1)"
        ),
        BadManifest(
            name: "ftp",
            yaml: ManifestFixtures.withURL("ftp://sync.acme.example/v1/pull"),
            line: 4,
            column: 8,
            message: "'pull.url' must use https; found 'ftp'"
        ),
        BadManifest(
            name: "relative URL",
            yaml: ManifestFixtures.withURL("/v1/pull"),
            line: 4,
            column: 8,
            message: "'pull.url' must be an absolute URL like https://sync.partner.example/pull"
        ),
        BadManifest(
            name: "user information, not echoed",
            yaml: ManifestFixtures.withURL("https://user:hunter2@sync.acme.example/v1/pull"),
            line: 4,
            column: 8,
            message: "'pull.url' must not contain user information (user:password@); tokens belong in pull.auth"
        ),
        BadManifest(
            name: "fragment",
            yaml: ManifestFixtures.withURL("\"https://sync.acme.example/v1/pull#top\""),
            line: 4,
            column: 8,
            message: "'pull.url' must not have a fragment ('#…')"
        ),
        BadManifest(
            name: "port out of range",
            yaml: ManifestFixtures.withURL("https://sync.acme.example:70000/v1/pull"),
            line: 4,
            column: 8,
            message: "'pull.url' has an invalid port; use a number from 1 to 65535"
        ),
        BadManifest(
            name: "unencoded space",
            yaml: ManifestFixtures.withURL("https://sync.acme.example/v1/my pull"),
            line: 4,
            column: 8,
            message: "'pull.url' contains a space which must be percent-encoded"
        ),
        BadManifest(
            name: "host not allowed",
            yaml: ManifestFixtures.withURL("https://evil.example/v1/pull"),
            line: 4,
            column: 8,
            message: "'pull.url' host 'evil.example' is not in 'pull.allowed_hosts'; add it there or fix the URL"
        ),
        BadManifest(
            name: "url is a list",
            yaml: ManifestFixtures.withURL("[https://sync.acme.example/v1/pull]"),
            line: 4,
            column: 8,
            message: "'pull.url' must be a URL string like https://sync.acme.example/pull; found a list"
        ),
    ]

    static let hosts: [BadManifest] = [
        BadManifest(
            name: "no allowed hosts",
            yaml: ManifestFixtures.withHosts("[]"),
            line: 5,
            column: 18,
            message: "'pull.allowed_hosts' must list at least one host"
        ),
        BadManifest(
            name: "allowed_hosts is a string",
            yaml: ManifestFixtures.withHosts("sync.acme.example"),
            line: 5,
            column: 18,
            message: "'pull.allowed_hosts' must be a list of host names like [sync.acme.example]; "
                + "found 'sync.acme.example'"
        ),
        BadManifest(
            name: "allowed host with a scheme",
            yaml: ManifestFixtures.withHosts("[\"https://sync.acme.example\"]"),
            line: 5,
            column: 19,
            message: "'pull.allowed_hosts[0]' must be a host name like sync.acme.example (no scheme, port or path); "
                + "found 'https://sync.acme.example'"
        ),
        BadManifest(
            name: "allowed host repeated after normalization",
            yaml: ManifestFixtures.withHosts("[sync.acme.example, SYNC.Acme.Example.]"),
            line: 5,
            column: 38,
            message: "'pull.allowed_hosts[1]' repeats 'sync.acme.example'"
        ),
    ]

    static let request: [BadManifest] = [
        BadManifest(
            name: "{token} in the query",
            yaml: base + "  query:\n    ec_id: \"{ec_id}\"\n    key: \"{token}\"\n",
            line: 8,
            column: 10,
            message: "'pull.query.key' uses {token}; tokens are never sent in URLs, only in headers"
        ),
        BadManifest(
            name: "{token} in a plain query value points at the placeholder",
            yaml: base + "  query:\n    key: k-{token}\n",
            line: 7,
            column: 12,
            message: "'pull.query.key' uses {token}; tokens are never sent in URLs, only in headers"
        ),
        BadManifest(
            name: "unknown variable in a plain template points into the value",
            yaml: base + "  query:\n    id: ec-{ecid}\n",
            line: 7,
            column: 12,
            message: "invalid template in 'pull.query.id': unknown template variable '{ecid}'; valid: ",
            isPrefix: true
        ),
        BadManifest(
            name: "unknown variable in a quoted template points at the value",
            yaml: base + "  query:\n    id: \"ec-{ecid}\"\n",
            line: 7,
            column: 9,
            message: "invalid template in 'pull.query.id': unknown template variable '{ecid}'; valid: ",
            isPrefix: true
        ),
        BadManifest(
            name: "unclosed brace",
            yaml: base + "  headers:\n    X-Id: abc{ec_id\n",
            line: 7,
            column: 14,
            message: "invalid template in 'pull.headers.X-Id': unclosed '{' in template; write {variable}"
        ),
        BadManifest(
            name: "query is a list",
            yaml: base + "  query: [ec_id]\n",
            line: 6,
            column: 10,
            message:
                "'pull.query' must be a mapping of parameter names to templates like ec_id: \"{ec_id}\"; found a list"
        ),
        BadManifest(
            name: "query value is empty",
            yaml: base + "  query:\n    ec_id:\n",
            line: 7,
            column: 11,
            message: "'pull.query.ec_id' must be a template string like \"{ec_id}\"; found nothing"
        ),
        BadManifest(
            name: "header name with a space",
            yaml: base + "  headers:\n    X Publisher: pub-1\n",
            line: 7,
            column: 5,
            message: "header name 'X Publisher' in 'pull.headers' is not a valid HTTP field name "
                + "(letters, digits and !#$%&'*+-.^_`|~)"
        ),
        BadManifest(
            name: "Host header",
            yaml: base + "  headers:\n    host: sync.acme.example\n",
            line: 7,
            column: 5,
            message: "'pull.headers.host' cannot be set in a manifest; "
                + "Host, Content-Length, Transfer-Encoding and Connection are set by the HTTP client"
        ),
        BadManifest(
            name: "Transfer-Encoding header",
            yaml: base + "  headers:\n    Transfer-Encoding: chunked\n",
            line: 7,
            column: 5,
            message: "'pull.headers.Transfer-Encoding' cannot be set in a manifest; "
                + "Host, Content-Length, Transfer-Encoding and Connection are set by the HTTP client"
        ),
        BadManifest(
            name: "header repeated in another case",
            yaml: base + "  headers:\n    X-Publisher: a\n    x-publisher: b\n",
            line: 8,
            column: 5,
            message: "'pull.headers.x-publisher' repeats header 'X-Publisher' (line 7, column 5); "
                + "header names are case-insensitive"
        ),
        BadManifest(
            name: "header value with a line break",
            yaml: base + "  headers:\n    X-Publisher: \"pub\\r\\nX-Evil: 1\"\n",
            line: 7,
            column: 18,
            message: "'pull.headers.X-Publisher' must not contain line breaks or control characters"
        ),
        BadManifest(
            name: "{token} in a header without auth",
            yaml: base + "  headers:\n    X-Api-Key: \"{token}\"\n",
            line: 7,
            column: 16,
            message: "'pull.headers.X-Api-Key' uses {token} but 'pull.auth' is not set; "
                + "add auth: { header_token: { env: NAME } }"
        ),
    ]

    static let auth: [BadManifest] = [
        BadManifest(
            name: "Authorization header with bearer auth",
            yaml: base + "  headers:\n    Authorization: Basic x\n  auth:\n    bearer: { env: ACME_TOKEN }\n",
            line: 7,
            column: 5,
            message: "'pull.headers.Authorization' conflicts with 'pull.auth.bearer', "
                + "which sends Authorization: Bearer <token>; remove one"
        ),
        BadManifest(
            name: "literal Authorization header, not echoed",
            yaml: base + "  headers:\n    authorization: Basic dXNlcjpodW50ZXIy\n",
            line: 7,
            column: 20,
            message: "'pull.headers.authorization' must take its credential from {token} (see pull.auth), "
                + "never a literal value"
        ),
        BadManifest(
            name: "header_token that no header uses",
            yaml: base + "  auth:\n    header_token: { env: ACME_TOKEN }\n",
            line: 7,
            column: 5,
            message: "'pull.auth.header_token' is set but no header in 'pull.headers' uses {token}; "
                + "the token would never be sent"
        ),
        BadManifest(
            name: "literal bearer token, not echoed",
            yaml: base + "  auth:\n    bearer: sk_live_4f9a8b7c6d\n",
            line: 7,
            column: 13,
            message: "'pull.auth.bearer' must be a secret reference like { env: NAME } or { file: PATH }, "
                + "never a literal token"
        ),
        BadManifest(
            name: "literal header token, not echoed",
            yaml: base + "  headers:\n    X-Key: \"{token}\"\n  auth:\n    header_token: \"sk_live_4f9a8b7c6d\"\n",
            line: 9,
            column: 19,
            message: "'pull.auth.header_token' must be a secret reference like { env: NAME } or { file: PATH }, "
                + "never a literal token"
        ),
        BadManifest(
            name: "auth is a string, not echoed",
            yaml: base + "  auth: sk_live_4f9a8b7c6d\n",
            line: 6,
            column: 9,
            message: "'pull.auth' must be a mapping with one of bearer, header_token; found a string"
        ),
        BadManifest(
            name: "auth with neither form",
            yaml: base + "  auth: {}\n",
            line: 6,
            column: 9,
            message: "'pull.auth' must have exactly one of bearer, header_token"
        ),
        BadManifest(
            name: "auth with both forms",
            yaml: base + "  auth:\n    bearer: { env: A }\n    header_token: { env: B }\n",
            line: 7,
            column: 5,
            message: "'pull.auth' must have exactly one of bearer, header_token; found both"
        ),
        BadManifest(
            name: "unknown key under auth, not echoed",
            yaml: base + "  auth:\n    bearer: { env: ACME_TOKEN }\n    sk_live_4f9a8b7c6d: x\n",
            line: 8,
            column: 5,
            message: "unknown key in 'pull.auth'; valid keys: bearer, header_token"
        ),
        BadManifest(
            name: "reference with env and file",
            yaml: base + "  auth:\n    bearer: { env: ACME_TOKEN, file: /run/secrets/acme }\n",
            line: 7,
            column: 13,
            message: "'pull.auth.bearer' must have exactly one of env, file; found both"
        ),
        BadManifest(
            name: "invalid environment variable name, not echoed",
            yaml: base + "  auth:\n    bearer: { env: sk-live-4f9a }\n",
            line: 7,
            column: 20,
            message: "'pull.auth.bearer.env' must be an environment variable name: letters, digits and '_', "
                + "not starting with a digit"
        ),
        BadManifest(
            name: "empty file path",
            yaml: base + "  auth:\n    bearer: { file: '' }\n",
            line: 7,
            column: 21,
            message: "'pull.auth.bearer.file' must be a non-empty file path"
        ),
    ]

    static let numbers: [BadManifest] = [
        BadManifest(
            name: "enabled: yes",
            yaml: base + "  enabled: yes\n",
            line: 6,
            column: 12,
            message: "'pull.enabled' must be true or false; found 'yes'"
        ),
        BadManifest(
            name: "duration without a unit",
            yaml: base + "  ttl: \"3600\"\n",
            line: 6,
            column: 8,
            message: "invalid duration '3600' for 'pull.ttl'; write a number with a unit: 500ms, 2s, 5m, 24h, 1d"
        ),
        BadManifest(
            name: "duration with an unknown unit",
            yaml: base + "  ttl: 3w\n",
            line: 6,
            column: 8,
            message: "invalid duration '3w' for 'pull.ttl'; write a number with a unit: 500ms, 2s, 5m, 24h, 1d"
        ),
        BadManifest(
            name: "negative duration",
            yaml: base + "  timeout: -1s\n",
            line: 6,
            column: 12,
            message: "invalid duration '-1s' for 'pull.timeout'; write a number with a unit: 500ms, 2s, 5m, 24h, 1d"
        ),
        BadManifest(
            name: "duration is a list",
            yaml: base + "  ttl: [24h]\n",
            line: 6,
            column: 8,
            message: "'pull.ttl' must be a duration; write a number with a unit: 500ms, 2s, 5m, 24h, 1d; found a list"
        ),
        BadManifest(
            name: "timeout over 30s",
            yaml: base + "  timeout: 45s\n",
            line: 6,
            column: 12,
            message: "'pull.timeout' must be more than 0 and at most 30s; found '45s'"
        ),
        BadManifest(
            name: "timeout of zero",
            yaml: base + "  timeout: 0ms\n",
            line: 6,
            column: 12,
            message: "'pull.timeout' must be more than 0 and at most 30s; found '0ms'"
        ),
        BadManifest(
            name: "ttl under a second",
            yaml: base + "  ttl: 500ms\n",
            line: 6,
            column: 8,
            message: "'pull.ttl' must be at least 1s; found '500ms'"
        ),
        BadManifest(
            name: "rate limit of zero calls",
            yaml: base + "  rate_limit:\n    calls: 0\n",
            line: 7,
            column: 12,
            message: "'pull.rate_limit.calls' must be an integer of at least 1; found '0'"
        ),
        BadManifest(
            name: "rate limit calls as text",
            yaml: base + "  rate_limit: { calls: ten }\n",
            line: 6,
            column: 24,
            message: "'pull.rate_limit.calls' must be an integer of at least 1; found 'ten'"
        ),
        BadManifest(
            name: "rate limit window under a second",
            yaml: base + "  rate_limit:\n    window: 0.5s\n",
            line: 7,
            column: 13,
            message: "'pull.rate_limit.window' must be at least 1s; found '0.5s'"
        ),
        BadManifest(
            name: "rate limit is a number",
            yaml: base + "  rate_limit: 10\n",
            line: 6,
            column: 15,
            message: "'pull.rate_limit' must be a mapping with keys calls, window; found '10'"
        ),
        BadManifest(
            name: "budget of zero",
            yaml: base + "  budget_per_second: 0\n",
            line: 6,
            column: 22,
            message: "'pull.budget_per_second' must be a number greater than 0 (calls per second to this partner); "
                + "found '0'"
        ),
        BadManifest(
            name: "budget as text",
            yaml: base + "  budget_per_second: \"50\"\n",
            line: 6,
            column: 22,
            message: "'pull.budget_per_second' must be a number greater than 0 (calls per second to this partner); "
                + "found '50'"
        ),
        BadManifest(
            name: "uid_field with an empty segment",
            yaml: base + "  response:\n    uid_field: data..uid\n",
            line: 7,
            column: 16,
            message: "'pull.response.uid_field' must be a dot path of object keys like uid or data.user.id; "
                + "found 'data..uid'"
        ),
        BadManifest(
            name: "200 as a not-found status",
            yaml: base + "  response:\n    not_found_statuses: [404, 200]\n",
            line: 7,
            column: 31,
            message: "'pull.response.not_found_statuses[1]' cannot be 200; a 200 response carries the UID"
        ),
        BadManifest(
            name: "status out of range",
            yaml: base + "  response:\n    not_found_statuses: [404, 999]\n",
            line: 7,
            column: 31,
            message: "'pull.response.not_found_statuses[1]' must be an integer from 100 to 599 (an HTTP status code); "
                + "found '999'"
        ),
        BadManifest(
            name: "statuses not a list",
            yaml: base + "  response:\n    not_found_statuses: 404\n",
            line: 7,
            column: 25,
            message: "'pull.response.not_found_statuses' must be a list of HTTP status codes like [404]; found '404'"
        ),
        BadManifest(
            name: "TCF vendor ID out of range",
            yaml: base + "consent:\n  tcf_vendor_id: 70000\n",
            line: 7,
            column: 18,
            message: "'consent.tcf_vendor_id' must be an integer from 1 to 65535 (the IAB TCF vendor ID); "
                + "found '70000'"
        ),
        BadManifest(
            name: "GPP section out of range",
            yaml: base + "consent:\n  gpp_skip_sections: [7, 0]\n",
            line: 7,
            column: 26,
            message: "'consent.gpp_skip_sections[1]' must be an integer from 1 to 255 (a GPP section ID); found '0'"
        ),
        BadManifest(
            name: "GPP section repeated",
            yaml: base + "consent:\n  gpp_skip_sections: [7, 7]\n",
            line: 7,
            column: 26,
            message: "'consent.gpp_skip_sections[1]' repeats section 7"
        ),
        BadManifest(
            name: "consent is a list",
            yaml: base + "consent: [123]\n",
            line: 6,
            column: 10,
            message: "'consent' must be a mapping with keys tcf_vendor_id, gpp_skip_sections; found a list"
        ),
    ]

    static let optOut: [BadManifest] = [
        BadManifest(
            name: "opt-out host not allowed",
            yaml: base + "optout:\n  url: https://evil.example/optout\n",
            line: 7,
            column: 8,
            message: "'optout.url' host 'evil.example' is not in 'pull.allowed_hosts'; add it there or fix the URL"
        ),
        BadManifest(
            name: "opt-out method PUT",
            yaml: base + "optout:\n  url: https://sync.acme.example/optout\n  method: PUT\n",
            line: 8,
            column: 11,
            message: "'optout.method' must be GET, POST or DELETE; found 'PUT'"
        ),
        BadManifest(
            name: "opt-out without a URL",
            yaml: base + "optout:\n  method: POST\n",
            line: 7,
            column: 3,
            message: "missing required key 'optout.url'"
        ),
        BadManifest(
            name: "opt-out over plain http to a public host",
            yaml: base + "optout:\n  url: http://sync.acme.example/optout\n",
            line: 7,
            column: 8,
            message: "'optout.url'",
            isPrefix: true
        ),
        BadManifest(
            name: "{token} in an opt-out query",
            yaml: base + "optout:\n  url: https://sync.acme.example/optout\n  query:\n    t: \"{token}\"\n",
            line: 9,
            column: 8,
            message: "'optout.query.t' uses {token}; tokens are never sent in URLs, only in headers"
        ),
        BadManifest(
            name: "opt-out header token never sent",
            yaml: base
                + "optout:\n  url: https://sync.acme.example/optout\n  auth:\n    header_token: { env: ACME_OPTOUT }\n",
            line: 9,
            column: 5,
            message: "'optout.auth.header_token' is set but no header in 'optout.headers' uses {token}; "
                + "the token would never be sent"
        ),
        BadManifest(
            name: "opt-out key misspelled",
            yaml: base + "optout:\n  url: https://sync.acme.example/optout\n  metod: POST\n",
            line: 8,
            column: 3,
            message: "unknown key 'optout.metod'; valid keys: url, method, query, headers, auth; did you mean 'method'?"
        ),
    ]

    static let eid: [BadManifest] = [
        BadManifest(
            name: "EID agent type 4",
            yaml: base + "eid:\n  atype: 4\n",
            line: 7,
            column: 10,
            message: "'eid.atype' must be 1, 2 or 3 (AdCOM agent type: 1 browser or device, 2 in-app device ID, 3 person-based); "
                + "found '4'"
        ),
        BadManifest(
            name: "EID agent type 0",
            yaml: base + "eid: {atype: 0}\n",
            line: 6,
            column: 14,
            message: "'eid.atype' must be 1, 2 or 3 (AdCOM agent type: 1 browser or device, 2 in-app device ID, 3 person-based); "
                + "found '0'"
        ),
        BadManifest(
            name: "EID agent type as a word",
            yaml: base + "eid:\n  atype: three\n",
            line: 7,
            column: 10,
            message: "'eid.atype' must be 1, 2 or 3 (AdCOM agent type: 1 browser or device, 2 in-app device ID, 3 person-based); "
                + "found 'three'"
        ),
        BadManifest(
            name: "EID match method 6",
            yaml: base + "eid:\n  mm: 6\n",
            line: 7,
            column: 7,
            message: "'eid.mm' must be an integer from 0 to 5 (the OpenRTB match method); found '6'"
        ),
        BadManifest(
            name: "EID match method -1",
            yaml: base + "eid:\n  mm: -1\n",
            line: 7,
            column: 7,
            message: "'eid.mm' must be an integer from 0 to 5 (the OpenRTB match method); found '-1'"
        ),
        BadManifest(
            name: "EID source not a DNS name",
            yaml: base + "eid:\n  source: https://id5-sync.com\n",
            line: 7,
            column: 11,
            message: "'eid.source' must be a DNS name like id5-sync.com (the EID's source); found 'https://id5-sync.com'"
        ),
        BadManifest(
            name: "EID key misspelled",
            yaml: base + "eid:\n  atyp: 1\n",
            line: 7,
            column: 3,
            message: "unknown key 'eid.atyp'; valid keys: source, atype, mm; did you mean 'atype'?"
        ),
        BadManifest(
            name: "EID not a mapping",
            yaml: base + "eid: 5\n",
            line: 6,
            column: 6,
            message: "'eid' must be a mapping with keys source, atype, mm; found '5'"
        ),
    ]
}

@Suite struct BadManifestTests {
    @Test(arguments: BadManifest.all)
    func reportsExactlyTheOneProblem(_ bad: BadManifest) {
        let diagnostics = ManifestFixtures.diagnostics(bad.yaml)
        #expect(diagnostics.count == 1, "\(diagnostics.map(\.description))")
        guard let diagnostic = diagnostics.first else { return }
        #expect(diagnostic.path == "m.yaml")
        #expect(diagnostic.line == bad.line)
        #expect(diagnostic.column == bad.column)
        if bad.isPrefix {
            #expect(diagnostic.message.hasPrefix(bad.message), "\(diagnostic.message)")
        } else {
            #expect(diagnostic.message == bad.message)
        }
        #expect(
            diagnostic.description == "m.yaml:\(diagnostic.line):\(diagnostic.column): error: \(diagnostic.message)"
        )
    }

    @Test func theTableIsLarge() {
        #expect(BadManifest.all.count >= 35)
        #expect(Set(BadManifest.all.map(\.name)).count == BadManifest.all.count)
    }

    @Test(arguments: BadManifest.all)
    func messagesNeverContainSecrets(_ bad: BadManifest) {
        for diagnostic in ManifestFixtures.diagnostics(bad.yaml) {
            #expect(!diagnostic.message.contains("sk_live_4f9a8b7c6d"))
            #expect(!diagnostic.message.contains("sk-live-4f9a"))
            #expect(!diagnostic.message.contains("hunter2"))
            #expect(!diagnostic.message.contains("dXNlcjpodW50ZXIy"))
        }
    }
}
