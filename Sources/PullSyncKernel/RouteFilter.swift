/// Decides which request paths are organic (pages and proxied content) and so may
/// trigger pull sync.
///
/// An excluded entry `"/sync"` excludes `/sync` and everything under `/sync/`; an entry
/// ending in `/*` (`"/admin/*"`) excludes everything under that prefix. The query string
/// is ignored.
public struct RouteFilter: Sendable, Hashable {
    /// The excluded entries as given.
    public let excluded: [String]
    private let prefixes: [String]
    private let exact: Set<String>

    /// The spec's default exclusions: `/sync`, `/identify`, `/auction`, `/admin/*`, `/_pullsync/*`.
    public static let defaultExcluded = ["/sync", "/identify", "/auction", "/admin/*", "/_pullsync/*"]

    public init(excluded: [String] = RouteFilter.defaultExcluded) {
        self.excluded = excluded
        var prefixes: [String] = []
        var exact: Set<String> = []
        for entry in excluded {
            if entry.hasSuffix("/*") {
                let base = String(entry.dropLast(2))
                exact.insert(base.isEmpty ? "/" : base)
                prefixes.append(base + "/")
            } else {
                let base = entry.count > 1 && entry.hasSuffix("/") ? String(entry.dropLast()) : entry
                exact.insert(base)
                prefixes.append(base == "/" ? "/" : base + "/")
            }
        }
        self.prefixes = prefixes
        self.exact = exact
    }

    /// Whether `path` is organic.
    public func isOrganic(_ path: some StringProtocol) -> Bool {
        var path = Substring(path)
        if let query = path.firstIndex(where: { $0 == "?" || $0 == "#" }) { path = path[..<query] }
        if path.isEmpty { path = "/" }
        if exact.contains(String(path)) { return false }
        return !prefixes.contains { path.hasPrefix($0) }
    }
}
