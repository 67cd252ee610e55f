import Foundation
import PartnerAdapterKit
import PartnerManifest
import PullSync
import PullSyncTesting
import Testing

/// The package root, found from this file's path.
let packageRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// `Tests/PullSyncAdaptersTests/Fixtures`: one folder per partner, Prebid Server style.
let fixturesFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

/// One partner case: the request context, the expected outgoing request (secrets as
/// `{{env:NAME}}` / `{{file:PATH}}` placeholders), the mocked response and the expected outcome.
struct PartnerFixture: Decodable, Sendable {
    struct Context: Decodable, Sendable {
        var ecID: String
        /// Unix seconds: the kernel's clock when the request is built.
        var now: Int64
        var consent: Consent?

        enum CodingKeys: String, CodingKey {
            case ecID = "ec_id"
            case now, consent
        }
    }

    struct Consent: Decodable, Sendable {
        var tcf: String?
        var gpp: String?
        var gppSID: [Int]?
        var usPrivacy: String?

        enum CodingKeys: String, CodingKey {
            case tcf, gpp
            case gppSID = "gpp_sid"
            case usPrivacy = "us_privacy"
        }
    }

    struct ExpectedRequest: Decodable, Sendable {
        var method: String
        var url: String
        /// Exactly the headers the adapter builds (the transport adds `User-Agent` and `Accept`).
        var headers: [String: String]
        /// The JSON body, compared as JSON; absent for no body.
        var body: JSONValue?
    }

    struct Response: Decodable, Sendable {
        var status: Int?
        var headers: [String: String]?
        /// A JSON body.
        var body: JSONValue?
        /// A body that is not JSON, verbatim.
        var bodyText: String?
        /// Pads the body with spaces to this many bytes (for size limits).
        var padToBytes: Int?
        /// A transport failure instead of a response: `timeout`, `transport_error`, `tls_error`, …
        var failure: String?

        enum CodingKeys: String, CodingKey {
            case status, headers, body, failure
            case bodyText = "body_text"
            case padToBytes = "pad_to_bytes"
        }
    }

    struct ExpectedOutcome: Decodable, Sendable {
        /// An outcome class, or `adapter_error` when no request can be built.
        var outcomeClass: String
        var uid: String?
        /// Unix seconds; `null` asserts that there is no partner-given expiry.
        var expiresAt: Int64?
        var hasExpiresAt: Bool
        var status: Int?
        /// For `adapter_error`: part of the message (it names the reference, never a value).
        var messageContains: String?

        enum CodingKeys: String, CodingKey {
            case outcomeClass = "class"
            case uid, status
            case expiresAt = "expires_at"
            case messageContains = "message_contains"
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            outcomeClass = try container.decode(String.self, forKey: .outcomeClass)
            uid = try container.decodeIfPresent(String.self, forKey: .uid)
            hasExpiresAt = container.contains(.expiresAt)
            expiresAt = try container.decodeIfPresent(Int64.self, forKey: .expiresAt)
            status = try container.decodeIfPresent(Int.self, forKey: .status)
            messageContains = try container.decodeIfPresent(String.self, forKey: .messageContains)
        }
    }

    var description: String
    var context: Context
    /// Values for the partner's secret references, by reference (`env:NAME`); a reference left
    /// out is unresolved.
    var secrets: [String: String]?
    /// `null` when the adapter must refuse to build a request.
    var expectedRequest: ExpectedRequest?
    var response: Response?
    var expectedOutcome: ExpectedOutcome

    enum CodingKeys: String, CodingKey {
        case description, context, secrets, response
        case expectedRequest = "expected_request"
        case expectedOutcome = "expected_outcome"
    }

    /// `text` with each `{{reference}}` replaced by its fixture value.
    func substitutingSecrets(in text: String) -> String {
        var result = text
        for (reference, value) in secrets ?? [:] {
            result = result.replacingOccurrences(of: "{{\(reference)}}", with: value)
        }
        return result
    }

    /// The mocked response as the transport hands it to the adapter.
    var transportResult: TransportResult? {
        guard let response else { return nil }
        if let failure = response.failure {
            return TransportFailure(rawValue: failure).map { .failure($0) }
        }
        var body: [UInt8] = []
        if let json = response.body { body = Array(JSONText.render(json).utf8) }
        if let text = response.bodyText { body = Array(text.utf8) }
        if let size = response.padToBytes, size > body.count {
            body += Array(repeating: UInt8(ascii: " "), count: size - body.count)
        }
        let headers = (response.headers ?? [:]).sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) }
        return .response(status: response.status ?? 200, headers: headers, body: body)
    }

    var consentStrings: ConsentStrings {
        ConsentStrings(
            tcf: context.consent?.tcf,
            gpp: context.consent?.gpp,
            gppSectionIDs: context.consent?.gppSID ?? [],
            usPrivacy: context.consent?.usPrivacy
        )
    }
}

/// One fixture file of one partner, ready to run: `@Test(arguments:)` takes these.
struct FixtureCase: Sendable, CustomTestStringConvertible {
    enum Kind: String, Sendable {
        case exemplary, supplemental
    }

    var partner: String
    var kind: Kind
    var name: String
    /// The manifest: the partner's own fixture `manifest.yaml`, or its file in `partners.d/`.
    var manifestPath: String
    /// The fixture, or why it could not be read (then its test fails, saying so).
    var fixture: Result<PartnerFixture, FixtureProblem>

    var testDescription: String { "\(partner)/\(kind.rawValue)/\(name)" }

    /// Every fixture of every partner folder, sorted.
    static func all(in folder: URL = fixturesFolder) -> [FixtureCase] {
        var cases: [FixtureCase] = []
        for partner in FixtureLayout.partnerFolders(in: folder) {
            let manifest = FixtureLayout.manifestPath(for: partner, in: folder)
            for kind in [Kind.exemplary, .supplemental] {
                for file in FixtureLayout.jsonFiles(
                    in: folder.appendingPathComponent(partner).appendingPathComponent(kind.rawValue)
                ) {
                    let fixture = Result { () throws(FixtureProblem) -> PartnerFixture in
                        do {
                            return try JSONDecoder().decode(PartnerFixture.self, from: Data(contentsOf: file))
                        } catch {
                            throw FixtureProblem(message: "\(file.path): \(error)")
                        }
                    }
                    cases.append(
                        FixtureCase(
                            partner: partner,
                            kind: kind,
                            name: file.deletingPathExtension().lastPathComponent,
                            manifestPath: manifest ?? "(no manifest for \(partner))",
                            fixture: fixture
                        )
                    )
                }
            }
        }
        return cases
    }
}

struct FixtureProblem: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Where fixtures and manifests are, and which partners and adapters lack a normal case.
enum FixtureLayout {
    static let shippedPartners = packageRoot.appendingPathComponent("partners.d")

    static func partnerFolders(in folder: URL) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted()
    }

    static func jsonFiles(in folder: URL) -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { $0.hasSuffix(".json") }.sorted().map { folder.appendingPathComponent($0) }
    }

    /// `Fixtures/<partner>/manifest.yaml` when present, else the shipped manifest whose id is
    /// `partner`.
    static func manifestPath(for partner: String, in folder: URL) -> String? {
        let own = folder.appendingPathComponent(partner).appendingPathComponent("manifest.yaml")
        if FileManager.default.fileExists(atPath: own.path) { return own.path }
        return ManifestLoader.load(paths: [shippedPartners.path]).manifests.first { $0.id == partner }?.path
    }

    /// What has no exemplary fixture: every shipped manifest needs one in the folder named after
    /// its id, and every registered compiled adapter needs one for some partner that uses it.
    /// Also every fixture folder must have a manifest.
    static func missing(
        shipped: [PartnerManifest],
        fixturePartners: [(id: String, manifest: PartnerManifest?, exemplary: Int)],
        adapters: [AdapterDescriptor]
    ) -> [String] {
        var missing: [String] = []
        let covered = Dictionary(fixturePartners.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        for manifest in shipped where (covered[manifest.id]?.exemplary ?? 0) == 0 {
            missing.append("partners.d manifest '\(manifest.id)' has no Fixtures/\(manifest.id)/exemplary/*.json")
        }
        for partner in fixturePartners where partner.manifest == nil {
            missing.append(
                "Fixtures/\(partner.id) has no manifest.yaml and no partners.d manifest with id '\(partner.id)'"
            )
        }
        for adapter in adapters {
            let exercised = fixturePartners.contains { partner in
                guard partner.exemplary > 0, case .compiled(let reference)? = partner.manifest?.adapter else {
                    return false
                }
                return reference.name == adapter.name
            }
            if !exercised {
                missing.append("compiled adapter '\(adapter.name)' has no exemplary fixture for a partner that uses it")
            }
        }
        return missing
    }

    /// The layout of `folder` as ``missing(shipped:fixturePartners:adapters:)`` reads it.
    static func fixturePartners(in folder: URL) -> [(id: String, manifest: PartnerManifest?, exemplary: Int)] {
        partnerFolders(in: folder).map { partner in
            let manifest = manifestPath(for: partner, in: folder).flatMap {
                ManifestLoader.load(paths: [$0]).manifests.first
            }
            let exemplary = jsonFiles(in: folder.appendingPathComponent(partner).appendingPathComponent("exemplary"))
            return (partner, manifest, exemplary.count)
        }
    }
}

/// Resolves references from a fixture's `secrets`; any other reference is not set.
struct FixtureSecrets: SecretResolver {
    var values: [String: String]

    func resolve(_ reference: SecretReference) throws(SecretResolutionError) -> Secret {
        guard let value = values[reference.description] else {
            throw SecretResolutionError(reference: reference, problem: "is not set")
        }
        return Secret(value)
    }
}

/// JSON text for a ``JSONValue`` (sorted keys; whole numbers without a fraction).
enum JSONText {
    static func render(_ value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool(let flag): flag ? "true" : "false"
        case .number(let number):
            number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : String(number)
        case .string(let text): quote(text)
        case .array(let elements): "[" + elements.map(render).joined(separator: ",") + "]"
        case .object(let members):
            "{"
                + members.sorted { $0.key < $1.key }.map { quote($0.key) + ":" + render($0.value) }.joined(
                    separator: ","
                )
                + "}"
        }
    }

    static func quote(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case _ where scalar.value < 0x20: result += String(format: "\\u%04x", scalar.value)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
