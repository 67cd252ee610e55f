/// A secret value (a partner token). Its `description`, `debugDescription` and reflection
/// never show the value, so it can't leak through string interpolation, `print`, `dump`
/// or a log line.
public struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    private let storage: String

    /// Wraps `value`.
    public init(_ value: String) {
        self.storage = value
    }

    /// The secret itself. Call only where the value goes on the wire.
    public func reveal() -> String { storage }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "Secret(<redacted>)" }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}

/// Where a secret comes from. Manifests hold references, never values.
public enum SecretReference: Sendable, Hashable, CustomStringConvertible {
    /// An environment variable of the process.
    case environment(String)
    /// A file whose contents (trailing newlines removed) are the secret.
    case file(String)

    /// `env:NAME` or `file:PATH`; names the reference, never its value.
    public var description: String {
        switch self {
        case .environment(let name): "env:\(name)"
        case .file(let path): "file:\(path)"
        }
    }
}
