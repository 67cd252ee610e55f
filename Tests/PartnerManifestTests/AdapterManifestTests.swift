@testable import PartnerManifest
import PullSyncKernel
import Testing

/// `pull.adapter` and `pull.params`: checked against the compiled adapters' descriptors, every
/// problem at its line and column.
extension BadManifest {
    static let adapters: [BadManifest] = [
        BadManifest(
            name: "unknown adapter, with a suggestion",
            yaml: base + "  adapter: signd-get\n  params: { key_id: k, secret: { env: K } }\n",
            line: 6,
            column: 12,
            message:
                "unknown adapter 'signd-get' in 'pull.adapter'; valid: json-post, signed-get; did you mean 'signed-get'?"
        ),
        BadManifest(
            name: "adapter is a list",
            yaml: base + "  adapter: [signed-get]\n",
            line: 6,
            column: 12,
            message: "'pull.adapter' must be the name of a compiled adapter (json-post, signed-get); found a list"
        ),
        BadManifest(
            name: "params without an adapter",
            yaml: base + "  params: { key_id: k }\n",
            line: 6,
            column: 3,
            message: "'pull.params' gives parameters to a compiled adapter, but 'pull.adapter' is not set; "
                + "name one (json-post, signed-get) or remove 'pull.params'"
        ),
        BadManifest(
            name: "an adapter with query",
            yaml: base + "  adapter: json-post\n  params: { account_id: a }\n  query: { a: b }\n",
            line: 8,
            column: 3,
            message: "'pull.query' does not apply with 'pull.adapter' (the compiled adapter builds the request and "
                + "reads the answer); give its parameters in 'pull.params'"
        ),
        BadManifest(
            name: "an adapter with auth",
            yaml: base + "  auth: { bearer: { env: K } }\n  adapter: json-post\n  params: { account_id: a }\n",
            line: 6,
            column: 3,
            message: "'pull.auth' does not apply with 'pull.adapter' (the compiled adapter builds the request and "
                + "reads the answer); give its parameters in 'pull.params'"
        ),
        BadManifest(
            name: "an adapter without params",
            yaml: base + "  adapter: json-post\n",
            line: 6,
            column: 12,
            message: "missing required key 'pull.params.account_id' for adapter 'json-post': "
                + "The publisher's account at the partner; sent as account_id in the body"
        ),
        BadManifest(
            name: "a missing required parameter",
            yaml: base + "  adapter: signed-get\n  params:\n    key_id: k\n",
            line: 8,
            column: 5,
            message: "missing required key 'pull.params.secret' for adapter 'signed-get': "
                + "The HMAC-SHA256 key, as a secret reference"
        ),
        BadManifest(
            name: "params is a list",
            yaml: base + "  adapter: json-post\n  params: [account_id]\n",
            line: 7,
            column: 11,
            message: "'pull.params' must be a mapping of adapter 'json-post' parameters (account_id, token, uid_field, "
                + "expiry_field, expiry_format, max_expiry, send_consent); found a list"
        ),
        BadManifest(
            name: "an unknown parameter, with a suggestion",
            yaml: base + "  adapter: json-post\n  params:\n    account_id: a\n    acount_id: b\n",
            line: 9,
            column: 5,
            message: "unknown key 'pull.params.acount_id'; valid keys: account_id, token, uid_field, expiry_field, "
                + "expiry_format, max_expiry, send_consent; did you mean 'account_id'?"
        ),
        BadManifest(
            name: "a literal secret parameter",
            yaml: base + "  adapter: signed-get\n  params:\n    key_id: k\n    secret: hunter2\n",
            line: 9,
            column: 13,
            message: "'pull.params.secret' must be a secret reference like { env: NAME } or { file: PATH }, "
                + "never a literal token"
        ),
        BadManifest(
            name: "a secret parameter with a bad variable name",
            yaml: base + "  adapter: signed-get\n  params:\n    key_id: k\n    secret: { env: 9LIVES }\n",
            line: 9,
            column: 20,
            message: "'pull.params.secret.env' must be an environment variable name: letters, digits and '_', "
                + "not starting with a digit"
        ),
        BadManifest(
            name: "an empty text parameter",
            yaml: base + "  adapter: json-post\n  params:\n    account_id: \"\"\n",
            line: 8,
            column: 17,
            message: "'pull.params.account_id' must not be empty; found ''"
        ),
        BadManifest(
            name: "a choice parameter out of its words",
            yaml: base + "  adapter: json-post\n  params:\n    account_id: a\n    expiry_format: iso8601\n",
            line: 9,
            column: 20,
            message: "'pull.params.expiry_format' must be one of unix_seconds, seconds_from_now; found 'iso8601'"
        ),
        BadManifest(
            name: "a duration parameter out of range",
            yaml: base + "  adapter: json-post\n  params:\n    account_id: a\n    max_expiry: 400d\n",
            line: 9,
            column: 17,
            message: "'pull.params.max_expiry' must be from 1s to 365d; found '400d'"
        ),
        BadManifest(
            name: "a duration parameter that is no duration",
            yaml: base + "  adapter: json-post\n  params:\n    account_id: a\n    max_expiry: forever\n",
            line: 9,
            column: 17,
            message: "invalid duration 'forever' for 'pull.params.max_expiry'; "
                + "write a number with a unit: 500ms, 2s, 5m, 24h, 1d"
        ),
        BadManifest(
            name: "a boolean parameter written yes",
            yaml: base + "  adapter: json-post\n  params:\n    account_id: a\n    send_consent: yes\n",
            line: 9,
            column: 19,
            message: "'pull.params.send_consent' must be true or false; found 'yes'"
        ),
        BadManifest(
            name: "a header-name parameter the client sets",
            yaml: base
                + "  adapter: signed-get\n  params:\n    key_id: k\n    secret: { env: K }\n    signature_header: Host\n",
            line: 10,
            column: 23,
            message: "'pull.params.signature_header' cannot be Host, Content-Length, Transfer-Encoding or Connection "
                + "(the HTTP client sets them); found 'Host'"
        ),
        BadManifest(
            name: "a field-path parameter with an empty key",
            yaml: base + "  adapter: json-post\n  params:\n    account_id: a\n    uid_field: data..uid\n",
            line: 9,
            column: 16,
            message:
                "'pull.params.uid_field' must be a dot path of object keys like uid or data.user.id; found 'data..uid'"
        ),
    ]
}

@Suite struct AdapterManifestTests {
    @Test(arguments: BadManifest.adapters)
    func reportsExactlyTheOneProblem(_ bad: BadManifest) {
        let diagnostics = ManifestFixtures.diagnostics(bad.yaml)
        #expect(diagnostics.map(\.description) == ["m.yaml:\(bad.line):\(bad.column): error: \(bad.message)"])
        for diagnostic in diagnostics { #expect(!diagnostic.message.contains("hunter2")) }
    }

    @Test func everyProblemOfEveryParameterIsReported() {
        let yaml =
            base
            + "  adapter: json-post\n  params:\n    acount_id: a\n    send_consent: 1\n    max_expiry: 0s\n"
        #expect(
            ManifestFixtures.diagnostics(yaml).map { "\($0.line):\($0.column): \($0.message.prefix(42))" } == [
                "8:5: missing required key 'pull.params.account_",
                "8:5: unknown key 'pull.params.acount_id'; valid",
                "9:19: 'pull.params.send_consent' must be true or",
                "10:17: 'pull.params.max_expiry' must be from 1s t",
            ]
        )
    }

    @Test func aSignedGetManifestLoadsWithItsParametersAndSecret() throws {
        let manifest = try ManifestFixtures.manifest(
            base
                + "  adapter: signed-get\n  params:\n    key_id: pub-42\n    secret: { env: SIGNING_KEY }\n"
                + "    uid_field: result.uid\n"
        )
        #expect(manifest.http == nil)
        #expect(manifest.url == PartnerURL(scheme: "https", host: "sync.acme.example", path: "/v1/pull"))
        guard case .compiled(let reference) = manifest.adapter else {
            Issue.record("not a compiled adapter: \(manifest.adapter)")
            return
        }
        #expect(reference.name == "signed-get")
        #expect(
            reference.parameters.values == [
                "key_id": .text("pub-42"),
                "secret": .secret(.environment("SIGNING_KEY")),
                "signature_header": .text("X-Signature"),
                "uid_field": .fieldPath(["result", "uid"]),
            ]
        )
        #expect(
            manifest.secrets == [
                PartnerManifest.SecretUse(
                    reference: .environment("SIGNING_KEY"),
                    key: "pull.params.secret",
                    line: 9,
                    column: 20
                )
            ]
        )
        #expect(manifest.adapterLocation?.line == 6)
        #expect(manifest.adapterLocation?.column == 12)
    }

    @Test func aManifestCheckedWithoutCompiledAdaptersRefusesTheName() {
        let yaml = base + "  adapter: json-post\n  params: { account_id: a }\n"
        guard case .failure(let errors) = ManifestLoader.load(bytes: Array(yaml.utf8), path: "m.yaml", adapters: [])
        else {
            Issue.record("loaded without the adapter")
            return
        }
        #expect(
            errors.description
                == "m.yaml:6:12: error: unknown adapter 'json-post' in 'pull.adapter'; valid: no compiled adapters are registered"
        )
    }
}

private let base = ManifestFixtures.base
