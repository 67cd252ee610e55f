import PullSyncKernel
import PartnerAdapterKit

/// HTTP header names a manifest may set.
enum HTTPFieldName {
    /// Set by the HTTP client from the request itself; a manifest can't override them.
    static let refused: Set<String> = ["host", "content-length", "transfer-encoding", "connection"]

    /// Whether `name` is an RFC 9110 token: one or more of `A-Z a-z 0-9 ! # $ % & ' * + - . ^ _ ` | ~`.
    static func isToken(_ name: String) -> Bool { AdapterParameter.isToken(name) }

    /// ASCII lowercase, for case-insensitive comparison.
    static func lowercased(_ name: String) -> String {
        String(decoding: name.utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0 }, as: UTF8.self)
    }
}
