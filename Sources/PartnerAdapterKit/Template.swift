/// The closed set of variables that query and header templates may use.
public enum TemplateVariable: String, Sendable, CaseIterable, Hashable {
    /// The whole EC value.
    case ecID = "ec_id"
    /// The EC's hash (the part before the first `.`).
    case ecHash = "ec_hash"
    /// The partner's `id`.
    case partnerID = "partner_id"
    /// The partner's `source_domain`.
    case sourceDomain = "source_domain"
    /// The send time in whole Unix seconds.
    case timestamp = "timestamp"
    /// The partner's resolved token. Allowed in headers only, never in a URL.
    case token = "token"
    /// The browser's IP address; empty unless the deployment opts in to forwarding it.
    case clientIP = "client_ip"
    /// The request's TCF v2 TC string, or empty.
    case gdprConsent = "gdpr_consent"
    /// The request's GPP string, or empty.
    case gpp = "gpp"
    /// The request's applicable GPP section IDs, comma-separated, or empty.
    case gppSID = "gpp_sid"
    /// The request's US privacy string, or empty.
    case usPrivacy = "us_privacy"

    /// All variable names, for error messages.
    public static let allNames: String = allCases.map(\.rawValue).joined(separator: ", ")
}

/// A string with `{variable}` placeholders over ``TemplateVariable``.
public struct Template: Sendable, Hashable, CustomStringConvertible {
    /// One literal run or one placeholder.
    public enum Segment: Sendable, Hashable {
        case literal(String)
        case variable(TemplateVariable)
    }

    /// Why a template string was refused.
    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        /// Offset in UTF-8 bytes from the template's start to the problem.
        public var offset: Int
        /// What is wrong and what would be valid.
        public var message: String
        public var description: String { message }
    }

    /// The parsed segments, in order.
    public let segments: [Segment]
    /// The source text.
    public let source: String

    /// Parses `source`. `{` opens a placeholder that must name a ``TemplateVariable`` and
    /// close with `}`; a lone `}` is an error. There is no escape: literal braces are refused.
    public init(parsing source: String) throws(ParseError) {
        var segments: [Segment] = []
        var literal: [UInt8] = []
        let bytes = Array(source.utf8)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "{") {
                guard let close = bytes[(index + 1)...].firstIndex(of: UInt8(ascii: "}")) else {
                    throw ParseError(offset: index, message: "unclosed '{' in template; write {variable}")
                }
                let name = String(decoding: bytes[(index + 1)..<close], as: UTF8.self)
                guard let variable = TemplateVariable(rawValue: name) else {
                    throw ParseError(
                        offset: index,
                        message: "unknown template variable '{\(name)}'; valid: \(TemplateVariable.allNames)"
                    )
                }
                if !literal.isEmpty {
                    segments.append(.literal(String(decoding: literal, as: UTF8.self)))
                    literal.removeAll()
                }
                segments.append(.variable(variable))
                index = close + 1
            } else if byte == UInt8(ascii: "}") {
                throw ParseError(offset: index, message: "unexpected '}' in template; write {variable}")
            } else {
                literal.append(byte)
                index += 1
            }
        }
        if !literal.isEmpty { segments.append(.literal(String(decoding: literal, as: UTF8.self))) }
        self.segments = segments
        self.source = source
    }

    /// The variables this template uses.
    public var variables: Set<TemplateVariable> {
        Set(segments.compactMap { if case .variable(let v) = $0 { v } else { nil } })
    }

    /// Substitutes each variable with `value(variable)`.
    public func render(_ value: (TemplateVariable) -> String) -> String {
        var result = ""
        for segment in segments {
            switch segment {
            case .literal(let text): result += text
            case .variable(let variable): result += value(variable)
            }
        }
        return result
    }

    public var description: String { source }
}
