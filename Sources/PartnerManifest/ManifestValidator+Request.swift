import PullSyncKernel
import PartnerAdapterKit

/// The validated request parts of `pull`: query, headers and auth.
struct RequestSection {
    var query: [HTTPPullAdapter.Configuration.QueryItem]?
    var headers: [HTTPPullAdapter.Configuration.QueryItem]
    var auth: HTTPPullAdapter.Configuration.Auth
    var secretPosition: SourcePosition?
}

extension ManifestValidator {
    /// `pull.query`, `pull.headers` and `pull.auth`, and the rules that tie them together.
    mutating func validateRequest(_ pull: Fields) -> RequestSection? {
        let before = problemCount

        var query: [HTTPPullAdapter.Configuration.QueryItem]?
        if let entry = pull["query"] { query = queryItems(entry) }

        var headers: [HTTPPullAdapter.Configuration.QueryItem] = []
        var tokenUses: [(path: String, position: SourcePosition)] = []
        var authorizationHeader: Entry?
        if let entry = pull["headers"], let items = headerItems(entry, tokenUses: &tokenUses) {
            headers = items.items
            authorizationHeader = items.authorization
        }

        var auth = HTTPPullAdapter.Configuration.Auth.none
        var authEntry: (key: String, position: SourcePosition)?
        var secretPosition: SourcePosition?
        let authNode = pull["auth"]
        if let entry = authNode, let parsed = self.auth(entry) {
            auth = parsed.auth
            authEntry = (parsed.key, parsed.keyPosition)
            secretPosition = parsed.secretPosition
        }

        if authNode == nil {
            for use in tokenUses {
                error(
                    use.position,
                    "'\(use.path)' uses {token} but 'pull.auth' is not set; "
                        + "add auth: { header_token: { env: NAME } }"
                )
            }
        }
        if let authEntry, authEntry.key == "header_token", tokenUses.isEmpty {
            error(
                authEntry.position,
                "'pull.auth.header_token' is set but no header in 'pull.headers' uses {token}; "
                    + "the token would never be sent"
            )
        }
        if let authEntry, authEntry.key == "bearer", let header = authorizationHeader {
            error(
                header.keyPosition,
                "'\(header.path)' conflicts with 'pull.auth.bearer', which sends Authorization: Bearer <token>; "
                    + "remove one"
            )
        } else if let header = authorizationHeader,
            let template = headers.first(where: { $0.name == header.key })?.value,
            !template.variables.contains(.token)
        {
            // A credential written into the manifest: refuse it, without repeating it.
            error(
                header.value.position,
                "'\(header.path)' must take its credential from {token} (see pull.auth), never a literal value"
            )
        }
        guard problemCount == before else { return nil }
        return RequestSection(query: query, headers: headers, auth: auth, secretPosition: secretPosition)
    }

    /// A mapping of names to templates, in order.
    private mutating func templateEntries(_ entry: Entry, expected: String) -> [Entry]? {
        guard case .mapping(let mapping) = entry.value else {
            error(entry.value.position, "'\(entry.path)' must be \(expected); found \(entry.value.found())")
            return nil
        }
        return entries(of: mapping, path: entry.path, sensitive: false)
    }

    private mutating func queryItems(_ entry: Entry) -> [HTTPPullAdapter.Configuration.QueryItem]? {
        guard
            let entries = templateEntries(
                entry,
                expected: "a mapping of parameter names to templates like ec_id: \"{ec_id}\""
            )
        else { return nil }
        var items: [HTTPPullAdapter.Configuration.QueryItem] = []
        var valid = true
        for item in entries {
            guard !item.key.isEmpty else {
                error(item.keyPosition, "query parameter names in '\(entry.path)' must not be empty")
                valid = false
                continue
            }
            guard let template = template(item) else {
                valid = false
                continue
            }
            if template.variables.contains(.token) {
                error(
                    tokenPosition(in: item.value),
                    "'\(item.path)' uses {token}; tokens are never sent in URLs, only in headers"
                )
                valid = false
                continue
            }
            items.append(.init(name: item.key, value: template))
        }
        return valid ? items : nil
    }

    private mutating func headerItems(
        _ entry: Entry,
        tokenUses: inout [(path: String, position: SourcePosition)]
    ) -> (items: [HTTPPullAdapter.Configuration.QueryItem], authorization: Entry?)? {
        guard let entries = templateEntries(entry, expected: "a mapping of header names to templates") else {
            return nil
        }
        var items: [HTTPPullAdapter.Configuration.QueryItem] = []
        var seen: [String: Entry] = [:]
        var authorization: Entry?
        var valid = true
        for item in entries {
            let lowercased = HTTPFieldName.lowercased(item.key)
            guard HTTPFieldName.isToken(item.key) else {
                error(
                    item.keyPosition,
                    "header name \(Quote.text(item.key)) in '\(entry.path)' is not a valid HTTP field name "
                        + "(letters, digits and !#$%&'*+-.^_`|~)"
                )
                valid = false
                continue
            }
            if HTTPFieldName.refused.contains(lowercased) {
                error(
                    item.keyPosition,
                    "'\(item.path)' cannot be set in a manifest; "
                        + "Host, Content-Length, Transfer-Encoding and Connection are set by the HTTP client"
                )
                valid = false
                continue
            }
            if let first = seen[lowercased] {
                error(
                    item.keyPosition,
                    "'\(item.path)' repeats header \(Quote.text(first.key)) (line \(first.keyPosition.line), "
                        + "column \(first.keyPosition.column)); header names are case-insensitive"
                )
                valid = false
                continue
            }
            seen[lowercased] = item
            if lowercased == "authorization" { authorization = item }
            guard let template = template(item) else {
                valid = false
                continue
            }
            if case .scalar(let scalar) = item.value,
                scalar.string.unicodeScalars.contains(where: { ($0.value < 0x20 && $0 != "\t") || $0.value == 0x7F })
            {
                error(item.value.position, "'\(item.path)' must not contain line breaks or control characters")
                valid = false
                continue
            }
            if template.variables.contains(.token) {
                tokenUses.append((item.path, tokenPosition(in: item.value)))
            }
            items.append(.init(name: item.key, value: template))
        }
        return valid ? (items, authorization) : nil
    }

    /// A template string, parsed; errors point into the value when it is written verbatim.
    private mutating func template(_ entry: Entry) -> Template? {
        guard case .scalar(let scalar) = entry.value, ScalarMeaning(scalar) != .null else {
            error(
                entry.value.position,
                "'\(entry.path)' must be a template string like \"{ec_id}\"; found \(entry.value.found())"
            )
            return nil
        }
        do {
            return try Template(parsing: scalar.string)
        } catch {
            self.error(
                position(in: entry.value, byteOffset: error.offset),
                "invalid template in '\(entry.path)': \(error.message)"
            )
            return nil
        }
    }

    private func tokenPosition(in node: Node) -> SourcePosition {
        guard case .scalar(let scalar) = node,
            let range = scalar.string.utf8.firstRange(of: "{token}".utf8)
        else { return node.position }
        return position(
            in: node,
            byteOffset: scalar.string.utf8.distance(from: scalar.string.utf8.startIndex, to: range.lowerBound)
        )
    }

    /// `pull.auth`: exactly one of `bearer` and `header_token`, each a secret reference.
    private mutating func auth(
        _ entry: Entry
    ) -> (
        auth: HTTPPullAdapter.Configuration.Auth, key: String, keyPosition: SourcePosition,
        secretPosition: SourcePosition
    )? {
        guard
            let fields = fields(
                of: entry.value,
                path: entry.path,
                validKeys: Self.authKeys,
                expected: "a mapping with one of bearer, header_token",
                sensitive: true
            )
        else { return nil }
        guard fields.entries.count == 1, let chosen = fields.entries.first else {
            let found = fields.entries.count > 1 ? "; found both" : ""
            error(fields.position, "'\(entry.path)' must have exactly one of bearer, header_token\(found)")
            return nil
        }
        guard let (reference, position) = secretReference(chosen) else { return nil }
        let auth: HTTPPullAdapter.Configuration.Auth =
            chosen.key == "bearer" ? .bearer(reference) : .headerTemplate(reference)
        return (auth, chosen.key, chosen.keyPosition, position)
    }

    /// `{ env: NAME }` or `{ file: PATH }`. Values here may be secrets: never in messages.
    mutating func secretReference(_ entry: Entry) -> (SecretReference, SourcePosition)? {
        guard case .mapping = entry.value else {
            error(
                entry.value.position,
                "'\(entry.path)' must be a secret reference like { env: NAME } or { file: PATH }, never a literal token"
            )
            return nil
        }
        guard
            let fields = fields(
                of: entry.value,
                path: entry.path,
                validKeys: Self.referenceKeys,
                expected: "a secret reference like { env: NAME } or { file: PATH }",
                sensitive: true
            )
        else { return nil }
        guard fields.entries.count == 1, let chosen = fields.entries.first else {
            let found = fields.entries.count > 1 ? "; found both" : ""
            error(fields.position, "'\(entry.path)' must have exactly one of env, file\(found)")
            return nil
        }
        if chosen.key == "env" {
            guard let name = string(chosen, expected: "an environment variable name", sensitive: true) else {
                return nil
            }
            guard Self.isEnvironmentName(name) else {
                error(
                    chosen.value.position,
                    "'\(chosen.path)' must be an environment variable name: letters, digits and '_', "
                        + "not starting with a digit"
                )
                return nil
            }
            return (.environment(name), chosen.value.position)
        }
        guard let path = string(chosen, expected: "a file path", sensitive: true) else { return nil }
        guard !path.isEmpty else {
            error(chosen.value.position, "'\(chosen.path)' must be a non-empty file path")
            return nil
        }
        return (.file(path), chosen.value.position)
    }

    /// `^[A-Za-z_][A-Za-z0-9_]*$`
    static func isEnvironmentName(_ name: String) -> Bool {
        guard let first = name.utf8.first, !(first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9")) else {
            return false
        }
        return name.utf8.allSatisfy {
            ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z")) || ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z"))
                || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "_")
        }
    }
}
