import PartnerAdapterKit
import PullSyncKernel
import StrictYAML

/// The validated request parts of `pull` or `optout`: query, headers and auth.
struct RequestSection {
    var query: [HTTPPullAdapter.Configuration.QueryItem]?
    var headers: [HTTPPullAdapter.Configuration.QueryItem] = []
    var auth = HTTPPullAdapter.Configuration.Auth.none
    var secrets: [PartnerManifest.SecretUse] = []
}

extension ManifestValidator {
    /// `query`, `headers` and `auth` of `section` (`pull` or `optout`), and the rules that tie them together.
    mutating func validateRequest(_ pull: Fields, section: String = "pull") -> RequestSection? {
        let before = problemCount
        var request = RequestSection()
        if let entry = pull["query"] {
            request.query = templates(entry).flatMap { queryItems($0, in: entry) }
        }

        var tokenUses: [(path: String, position: SourcePosition)] = []
        var authorization: Entry?
        if let entry = pull["headers"], let items = templates(entry) {
            let headers = headerItems(items, in: entry, tokenUses: &tokenUses)
            request.headers = headers?.items ?? []
            authorization = headers?.authorization
        }

        var auth: Entry?
        if let entry = pull["auth"], let fields = fields(of: entry, sensitive: true),
            let chosen = onlyEntry(of: fields, at: entry),
            let (reference, position) = secretReference(chosen)
        {
            auth = chosen
            request.auth = chosen.key == "bearer" ? .bearer(reference) : .headerTemplate(reference)
            request.secrets = [
                .init(reference: reference, key: chosen.path, line: position.line, column: position.column)
            ]
        }

        if pull["auth"] == nil {
            for use in tokenUses {
                error(
                    use.position,
                    "'\(use.path)' uses {token} but '\(section).auth' is not set; add auth: { header_token: { env: NAME } }"
                )
            }
        }
        if let auth, auth.key == "header_token", tokenUses.isEmpty {
            error(
                auth.keyPosition,
                "'\(section).auth.header_token' is set but no header in '\(section).headers' uses {token}; "
                    + "the token would never be sent"
            )
        }
        if let auth, auth.key == "bearer", let header = authorization {
            error(
                header.keyPosition,
                "'\(header.path)' conflicts with '\(section).auth.bearer', which sends Authorization: Bearer <token>; "
                    + "remove one"
            )
        } else if let header = authorization,
            let template = request.headers.first(where: { $0.name == header.key })?.value,
            !template.variables.contains(.token)
        {
            // A credential written into the manifest: refuse it, without repeating it.
            error(
                header.value.position,
                "'\(header.path)' must take its credential from {token} (see \(section).auth), never a literal value"
            )
        }
        return problemCount == before ? request : nil
    }

    /// A mapping of names to templates, in order.
    private mutating func templates(_ entry: Entry) -> [Entry]? {
        guard case .mapping = entry.value.content else {
            mismatch(entry)
            return nil
        }
        return entries(of: entry.value, path: entry.path)
    }

    private mutating func queryItems(_ entries: [Entry], in entry: Entry) -> [HTTPPullAdapter.Configuration.QueryItem]?
    {
        var items: [HTTPPullAdapter.Configuration.QueryItem] = []
        var valid = true
        for item in entries {
            if item.key.isEmpty {
                error(item.keyPosition, "query parameter names in '\(entry.path)' must not be empty")
            } else if let template = template(item) {
                guard template.variables.contains(.token) else {
                    items.append(.init(name: item.key, value: template))
                    continue
                }
                error(
                    tokenPosition(in: item.value),
                    "'\(item.path)' uses {token}; tokens are never sent in URLs, only in headers"
                )
            }
            valid = false
        }
        return valid ? items : nil
    }

    private mutating func headerItems(
        _ entries: [Entry],
        in entry: Entry,
        tokenUses: inout [(path: String, position: SourcePosition)]
    ) -> (items: [HTTPPullAdapter.Configuration.QueryItem], authorization: Entry?)? {
        var items: [HTTPPullAdapter.Configuration.QueryItem] = []
        var seen: [String: Entry] = [:]
        var authorization: Entry?
        var valid = true
        for item in entries {
            let name = item.key.lowercased()
            if !AdapterParameter.isToken(item.key) {
                error(
                    item.keyPosition,
                    "header name \(Quote.text(item.key)) in '\(entry.path)' is not a valid HTTP field name "
                        + "(letters, digits and !#$%&'*+-.^_`|~)"
                )
            } else if AdapterParameter.refusedHeaderNames.contains(name) {
                error(
                    item.keyPosition,
                    "'\(item.path)' cannot be set in a manifest; "
                        + "Host, Content-Length, Transfer-Encoding and Connection are set by the HTTP client"
                )
            } else if let first = seen[name] {
                error(
                    item.keyPosition,
                    "'\(item.path)' repeats header \(Quote.text(first.key)) (line \(first.keyPosition.line), "
                        + "column \(first.keyPosition.column)); header names are case-insensitive"
                )
            } else {
                seen[name] = item
                if name == "authorization" { authorization = item }
                if let template = template(item) {
                    if item.value.text?.unicodeScalars.contains(where: {
                        ($0.value < 0x20 && $0 != "\t") || $0.value == 0x7F
                    }) == true {
                        error(item.value.position, "'\(item.path)' must not contain line breaks or control characters")
                    } else {
                        if template.variables.contains(.token) {
                            tokenUses.append((item.path, tokenPosition(in: item.value)))
                        }
                        items.append(.init(name: item.key, value: template))
                        continue
                    }
                }
            }
            valid = false
        }
        return valid ? (items, authorization) : nil
    }

    /// A template string, parsed; errors point into the value when it is written verbatim.
    private mutating func template(_ entry: Entry) -> Template? {
        guard let text = entry.value.text else {
            mismatch(entry, "a template string like \"{ec_id}\"")
            return nil
        }
        do {
            return try Template(parsing: text)
        } catch {
            self.error(
                position(in: entry.value, byteOffset: error.offset),
                "invalid template in '\(entry.path)': \(error.message)"
            )
            return nil
        }
    }

    private func tokenPosition(in node: Node) -> SourcePosition {
        guard let text = node.text, let range = text.utf8.firstRange(of: "{token}".utf8) else { return node.position }
        return position(in: node, byteOffset: text.utf8.distance(from: text.utf8.startIndex, to: range.lowerBound))
    }

    /// The one entry of a mapping that must hold exactly one of its keys (`pull.auth`, a secret
    /// reference).
    private mutating func onlyEntry(of fields: Fields, at entry: Entry) -> Entry? {
        if fields.entries.count == 1 { return fields.entries.first }
        let found = fields.entries.count > 1 ? "; found both" : ""
        let keys = fields.validKeys.joined(separator: ", ")
        error(fields.position, "'\(entry.path)' must have exactly one of \(keys)\(found)")
        return nil
    }

    /// `{ env: NAME }` or `{ file: PATH }`, and where the name or path is written. Values here may
    /// be secrets: never in messages.
    mutating func secretReference(_ entry: Entry) -> (SecretReference, SourcePosition)? {
        guard case .mapping = entry.value.content else {
            error(
                entry.value.position,
                "'\(entry.path)' must be a secret reference like { env: NAME } or { file: PATH }, never a literal token"
            )
            return nil
        }
        let fields = fields(
            of: entry.value,
            path: entry.path,
            validKeys: ManifestKeys.secretReferenceKeys,
            sensitive: true
        )
        guard let chosen = onlyEntry(of: fields, at: entry) else { return nil }
        let position = chosen.value.position
        if chosen.key == "env" {
            guard let name = string(chosen, expected: "an environment variable name", redacted: true) else {
                return nil
            }
            guard Self.isEnvironmentName(name) else {
                error(
                    position,
                    "'\(chosen.path)' must be an environment variable name: letters, digits and '_', "
                        + "not starting with a digit"
                )
                return nil
            }
            return (.environment(name), position)
        }
        guard let path = string(chosen, expected: "a file path", redacted: true) else { return nil }
        guard !path.isEmpty else {
            error(position, "'\(chosen.path)' must be a non-empty file path")
            return nil
        }
        return (.file(path), position)
    }

    /// `^[A-Za-z_][A-Za-z0-9_]*$`
    static func isEnvironmentName(_ name: String) -> Bool {
        guard let first = name.first, !first.isNumber else { return false }
        return name.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "_" }
    }
}
