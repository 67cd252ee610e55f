import PartnerAdapterKit
import PartnerManifest
import PullSync
import PullSyncAdapters
import Testing

@Suite struct AdapterRegistryTests {
    /// The build plugin's tool checks manifests against `AdapterDescriptor.builtIn` without linking
    /// the adapters; the registry partners load with must describe exactly the same adapters.
    @Test func theBuiltInRegistryMatchesTheDescriptorsManifestsAreCheckedAgainst() {
        #expect(AdapterRegistry.builtIn.descriptors == AdapterDescriptor.builtIn)
        #expect(AdapterRegistry.builtIn.descriptors.map(\.name) == ["json-post", "signed-get"])
        #expect(SignedGetAdapter.descriptor == .signedGet)
        #expect(JSONPostAdapter.descriptor == .jsonPost)
    }

    @Test(arguments: AdapterDescriptor.builtIn)
    func descriptorsAreWellFormed(descriptor: AdapterDescriptor) {
        #expect(AdapterDescriptor.isValidName(descriptor.name))
        #expect(Set(descriptor.parameters.map(\.name)).count == descriptor.parameters.count)
        for parameter in descriptor.parameters {
            #expect(parameter.name.wholeMatch(of: /[a-z][a-z0-9_]*/) != nil, "\(parameter.name)")
            #expect(!parameter.summary.isEmpty)
            if case .defaulted(let value) = parameter.requirement {
                #expect(parameter.problem(with: value) == nil, "\(descriptor.name).\(parameter.name)'s default")
            }
        }
    }

    @Test(arguments: [
        ("signed-got", "no compiled adapter 'signed-got' is registered (registered: json-post, signed-get)"),
        ("", "no compiled adapter '' is registered (registered: json-post, signed-get)"),
    ])
    func anUnregisteredNameIsRefused(name: String, message: String) throws {
        let parameters = try AdapterParameters([:], for: AdapterDescriptor(name: "x", summary: "x", parameters: []))
        let configuration = CompiledAdapterConfiguration(
            url: PartnerURL(scheme: "https", host: "a.example"),
            parameters: parameters
        )
        #expect(throws: AdapterError(message)) {
            try AdapterRegistry.builtIn.makeAdapter(named: name, configuration: configuration)
        }
    }

    /// A deployment's own adapter, registered beside the shipped ones.
    struct EchoAdapter: CompiledAdapter {
        static let descriptor = AdapterDescriptor(
            name: "echo",
            summary: "GET {url}?id={ec_hash}",
            parameters: [AdapterParameter("tag", .text, .required, summary: "A tag.")]
        )
        let url: PartnerURL
        let tag: String

        init(configuration: CompiledAdapterConfiguration) throws(AdapterError) {
            guard let tag = configuration.parameters.text("tag") else { throw AdapterError("no tag") }
            self.url = configuration.url
            self.tag = tag
        }

        func makeRequest(for context: PullContext) throws(AdapterError) -> PullRequest {
            PullRequest(url: url, query: [("id", context.edgeCookie.hashString), ("tag", tag)])
        }

        func classify(_ result: TransportResult, context: PullContext) -> PullOutcome { .notFound }
    }

    @Test func aDeploymentRegistersItsOwnAdapterAndManifestsCanNameIt() throws {
        let registry = AdapterRegistry.builtIn.registering(EchoAdapter.self)
        #expect(registry.descriptors.map(\.name) == ["echo", "json-post", "signed-get"])
        let yaml = """
            id: echoer
            source_domain: echo.example
            pull:
              url: https://echo.example/id
              allowed_hosts: [echo.example]
              adapter: echo
              params: { tag: blue }
            """
        // Checked against the built-in adapters only, the name is unknown, at its line and column.
        guard case .failure(let errors) = ManifestLoader.load(bytes: Array(yaml.utf8), path: "e.yaml") else {
            Issue.record("an unregistered adapter name loaded")
            return
        }
        #expect(errors.diagnostics.map { "\($0.line):\($0.column)" } == ["6:12"])
        let manifest = try ManifestLoader.load(bytes: Array(yaml.utf8), path: "e.yaml", adapters: registry.descriptors)
            .get()
        let partner = try manifest.makePartner(adapters: registry)
        let adapter = try #require(partner.adapter as? EchoAdapter)
        #expect(adapter.tag == "blue")
    }
}

@Suite struct AdapterParametersTests {
    @Test(arguments: [
        (
            [String: AdapterParameterValue](),
            "adapter 'signed-get' needs parameter 'key_id'; adapter 'signed-get' needs parameter 'secret'"
        ),
        (
            ["key_id": .text("k"), "secret": .secret(.environment("K")), "colour": .text("red")],
            "unknown parameter 'colour' for adapter 'signed-get'"
        ),
        (["key_id": .integer(4), "secret": .secret(.environment("K"))], "parameter 'key_id' must be one line of text"),
        (
            ["key_id": .text("a\nb"), "secret": .secret(.environment("K"))],
            "parameter 'key_id' must be one line without control characters"
        ),
        (
            ["key_id": .text("k"), "secret": .secret(.environment("K")), "signature_header": .text("Host")],
            "parameter 'signature_header' cannot be Host, Content-Length, Transfer-Encoding or Connection (the HTTP client sets them)"
        ),
        (
            ["key_id": .text("k"), "secret": .secret(.environment("K")), "uid_field": .fieldPath(["a", ""])],
            "parameter 'uid_field' must be a dot path of object keys like uid or data.user.id"
        ),
    ])
    func problemsAreRefusedAllAtOnce(values: [String: AdapterParameterValue], message: String) {
        #expect(throws: AdapterError(message)) { try AdapterParameters(values, for: .signedGet) }
    }

    @Test func defaultsAreFilledIn() throws {
        let parameters = try AdapterParameters(["account_id": .text("a")], for: .jsonPost)
        #expect(parameters.text("account_id") == "a")
        #expect(parameters.fieldPath("uid_field") == ["data", "uid"])
        #expect(parameters.fieldPath("expiry_field") == ["data", "expires_at"])
        #expect(parameters.text("expiry_format") == "unix_seconds")
        #expect(parameters.duration("max_expiry") == .seconds(30 * 86_400))
        #expect(parameters.boolean("send_consent") == true)
        #expect(parameters.secretReference("token") == nil)
        #expect(parameters.secretReferences == [])
    }

    @Test(arguments: [
        (
            AdapterParameter.Kind.duration(Duration.seconds(1)...Duration.seconds(86_400)),
            AdapterParameterValue.duration(.seconds(90_000)), "must be from 1s to 1d"
        ),
        (.choice(["a", "b"]), .text("c"), "must be one of a, b"),
        (.integer(1...5), .integer(6), "must be an integer from 1 to 5"),
        (.boolean, .text("yes"), "must be true or false"),
        (.secret, .text("hunter2"), "must be a secret reference like { env: NAME } or { file: PATH }, never a literal"),
        (.headerName, .text("X Sig"), "must be an HTTP header name (letters, digits and !#$%&'*+-.^_`|~)"),
        (.text, .text(String(repeating: "x", count: 1025)), "must be at most 1,024 bytes"),
        (.text, .text(""), "must not be empty"),
    ])
    func eachKindHasItsRules(kind: AdapterParameter.Kind, value: AdapterParameterValue, problem: String) {
        #expect(AdapterParameter("p", kind, .required, summary: "p").problem(with: value) == problem)
    }
}
