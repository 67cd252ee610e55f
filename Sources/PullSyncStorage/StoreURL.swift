/// A parsed store URL: `memory:`, `sqlite:PATH` or `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`.
public enum StoreURL: Sendable, Hashable, CustomStringConvertible {
    case memory
    /// An SQLite database file (created if missing).
    case sqlite(path: String)
    case postgres(PostgresStoreURL)

    /// A bad or unsupported store URL.
    package struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        package var description: String
    }

    /// Parses `url`. Errors name the problem and never echo a password.
    package init(parsing url: String) throws(ParseError) {
        if url == "memory:" || url == "memory" {
            self = .memory
        } else if url.hasPrefix("sqlite:") {
            var path = String(url.dropFirst("sqlite:".count))
            // `sqlite:///abs/path` and `sqlite://rel` are common spellings of the same thing.
            if path.hasPrefix("//") { path.removeFirst(2) }
            guard !path.isEmpty else {
                throw ParseError(description: "store URL 'sqlite:' needs a file path, e.g. sqlite:pullsync.db")
            }
            self = .sqlite(path: path)
        } else if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            self = .postgres(try PostgresStoreURL(parsing: url))
        } else {
            throw ParseError(
                description:
                    "unknown store URL '\(StoreURL.redacted(url))'; expected memory:, sqlite:PATH or postgres://USER@HOST/DB"
            )
        }
    }

    /// The URL as it may be shown: without a password.
    public var description: String {
        switch self {
        case .memory: "memory:"
        case .sqlite(let path): "sqlite:\(path)"
        case .postgres(let url): url.description
        }
    }

    /// `url` with anything between `://` and `@` replaced, so a password is never printed.
    static func redacted(_ url: String) -> String {
        var shown = url
        if let afterScheme = afterSchemeSeparator(in: shown), let at = shown[afterScheme...].lastIndex(of: "@") {
            shown.replaceSubrange(afterScheme..<at, with: "…")
        }
        return shown
    }

    /// The index just past the first `://` in `url`.
    static func afterSchemeSeparator(in url: String) -> String.Index? {
        var index = url.startIndex
        while index < url.endIndex {
            if url[index...].hasPrefix("://") { return url.index(index, offsetBy: 3) }
            index = url.index(after: index)
        }
        return nil
    }
}

/// The parts of a `postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?schema=NAME&sslmode=MODE]` URL.
public struct PostgresStoreURL: Sendable, Hashable, CustomStringConvertible {
    package var username: String
    package var password: String?
    /// A host name, an IP address, or a Unix socket folder (`host=/run/postgresql` in the query).
    package var host: String
    package var port: Int
    package var database: String
    /// The schema holding pullsync's tables (created if missing). Default `public`.
    package var schema: String
    /// `disable`, `prefer` (the default) or `require`.
    package var sslMode: SSLMode

    package enum SSLMode: String, Sendable, Hashable, CaseIterable {
        case disable, prefer, require
    }

    /// Parses a `postgres://` or `postgresql://` URL.
    package init(parsing url: String) throws(StoreURL.ParseError) {
        func fail(_ problem: String) -> StoreURL.ParseError {
            StoreURL.ParseError(description: "store URL '\(StoreURL.redacted(url))': \(problem)")
        }
        guard let afterScheme = StoreURL.afterSchemeSeparator(in: url) else {
            throw fail("expected postgres://USER@HOST/DB")
        }
        var rest = Substring(url[afterScheme...])
        var query: [(String, String)] = []
        if let mark = rest.firstIndex(of: "?") {
            for pair in rest[rest.index(after: mark)...].split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                query.append((String(parts[0]), parts.count > 1 ? Self.percentDecoded(parts[1]) : ""))
            }
            rest = rest[..<mark]
        }
        guard let at = rest.lastIndex(of: "@") else { throw fail("a user is required: postgres://USER@HOST/DB") }
        let credentials = rest[..<at]
        let location = rest[rest.index(after: at)...]
        if let colon = credentials.firstIndex(of: ":") {
            username = Self.percentDecoded(credentials[..<colon])
            password = Self.percentDecoded(credentials[credentials.index(after: colon)...])
        } else {
            username = Self.percentDecoded(credentials)
            password = nil
        }
        guard !username.isEmpty else { throw fail("the user name is empty") }
        guard let slash = location.firstIndex(of: "/") else {
            throw fail("a database name is required: postgres://USER@HOST/DB")
        }
        database = Self.percentDecoded(location[location.index(after: slash)...])
        guard !database.isEmpty else { throw fail("the database name is empty") }
        var hostPort = location[..<slash]
        port = 5432
        if hostPort.hasPrefix("[") {
            // [IPv6]:port
            guard let close = hostPort.firstIndex(of: "]") else { throw fail("unclosed '[' in the host") }
            let after = hostPort[hostPort.index(after: close)...]
            if after.hasPrefix(":") {
                guard let value = Int(after.dropFirst()), (1...65_535).contains(value) else {
                    throw fail("the port must be a number from 1 to 65535")
                }
                port = value
            } else if !after.isEmpty {
                throw fail("unexpected '\(after)' after the host")
            }
            hostPort = hostPort[hostPort.index(after: hostPort.startIndex)..<close]
        } else if let colon = hostPort.lastIndex(of: ":") {
            guard let value = Int(hostPort[hostPort.index(after: colon)...]), (1...65_535).contains(value) else {
                throw fail("the port must be a number from 1 to 65535")
            }
            port = value
            hostPort = hostPort[..<colon]
        }
        host = String(hostPort)
        schema = "public"
        sslMode = .prefer
        for (key, value) in query {
            switch key {
            case "schema":
                // Used as an identifier in SQL: letters, digits and underscores only.
                guard !value.isEmpty, value.count <= 63,
                    value.allSatisfy({ $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }),
                    !(value.first?.isNumber ?? true)
                else {
                    throw fail("schema must be letters, digits and underscores, not starting with a digit")
                }
                schema = value.lowercased()
            case "sslmode":
                guard let mode = SSLMode(rawValue: value) else {
                    throw fail("sslmode must be one of disable, prefer, require")
                }
                sslMode = mode
            case "host":
                host = value
            default:
                throw fail("unknown parameter '\(key)'; known: schema, sslmode, host")
            }
        }
        guard !host.isEmpty else { throw fail("the host is empty") }
    }

    /// The URL without its password.
    public var description: String {
        var text = "postgres://\(username)@\(host.contains(":") ? "[\(host)]" : host):\(port)/\(database)"
        var parameters: [String] = []
        if schema != "public" { parameters.append("schema=\(schema)") }
        if sslMode != .prefer { parameters.append("sslmode=\(sslMode.rawValue)") }
        if !parameters.isEmpty { text += "?" + parameters.joined(separator: "&") }
        return text
    }

    private static func percentDecoded(_ text: Substring) -> String {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        var index = text.utf8.startIndex
        let utf8 = text.utf8
        while index < utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: "%"),
                let high = utf8.index(index, offsetBy: 1, limitedBy: utf8.endIndex), high < utf8.endIndex,
                let low = utf8.index(index, offsetBy: 2, limitedBy: utf8.endIndex), low < utf8.endIndex,
                let value = UInt8(String(decoding: [utf8[high], utf8[low]], as: UTF8.self), radix: 16)
            {
                bytes.append(value)
                index = utf8.index(index, offsetBy: 3)
            } else {
                bytes.append(byte)
                index = utf8.index(after: index)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
