import PullSyncKernel
import Testing

/// Spec "Behaviour" 1: only organic routes; `/sync`, `/identify`, `/auction`, `/admin/*` and
/// `/_pullsync/*` are excluded by default, and the set is configurable.
@Suite("Route filter")
struct RouteFilterTests {
    @Test(
        "Default exclusions, their subpaths, query strings and fragments",
        arguments: [
            "/sync", "/sync/", "/sync/abc", "/sync?x=1", "/sync#top", "/identify", "/identify/", "/identify?ec=1",
            "/auction", "/auction/openrtb2", "/auction?id=1", "/admin", "/admin/", "/admin/x", "/admin/x/y?z=1",
            "/_pullsync", "/_pullsync/", "/_pullsync/ids", "/_pullsync/ids?ec=1",
        ]
    )
    func excludedByDefault(path: String) {
        #expect(!RouteFilter().isOrganic(path))
    }

    @Test(
        "Organic paths, including look-alikes of excluded ones",
        arguments: [
            "/", "", "/?sync=1", "/news/a", "/news/a?utm=1", "/synced", "/syncs/x", "/auctions", "/identify-me",
            "/administrator", "/_pullsyncx", "/news/sync", "/a/admin/x", "/index.html",
        ]
    )
    func organicByDefault(path: String) {
        #expect(RouteFilter().isOrganic(path))
    }

    @Test("The default list is the spec's")
    func defaultList() {
        #expect(RouteFilter().excluded == ["/sync", "/identify", "/auction", "/admin/*", "/_pullsync/*"])
        #expect(RouteFilter.defaultExcluded == RouteFilter().excluded)
    }

    @Test(
        "The excluded set is configurable",
        arguments: [
            ("/sync", true), ("/api", false), ("/api/v1/x", false), ("/apiary", true), ("/health", false),
            ("/health/", false), ("/healthz", true), ("/static", false), ("/static/app.js", false), ("/", true),
        ]
    )
    func customExclusions(path: String, organic: Bool) {
        let filter = RouteFilter(excluded: ["/api/*", "/health", "/static/"])
        #expect(filter.isOrganic(path) == organic)
    }

    @Test("With no exclusions every path is organic; excluding / excludes everything")
    func extremes() {
        #expect(RouteFilter(excluded: []).isOrganic("/sync"))
        #expect(!RouteFilter(excluded: ["/"]).isOrganic("/news/a"))
        #expect(!RouteFilter(excluded: ["/*"]).isOrganic("/"))
        #expect(!RouteFilter(excluded: ["/*"]).isOrganic("/news"))
    }

    @Test("Substring paths work like strings")
    func substrings() {
        let target = "GET /admin/users HTTP/1.1".split(separator: " ")[1]
        #expect(!RouteFilter().isOrganic(target))
    }
}

@Suite("Route filter normalization")
struct RouteFilterNormalizationTests {
    @Test(
        "Paths that a router would send to an excluded endpoint are excluded",
        arguments: [
            "//sync", "/SYNC", "/Auction", "/news/../sync", "/./identify", "/%73ync", "/admin//users", "/_PULLSYNC/x",
        ]
    )
    func evasionsAreExcluded(path: String) {
        #expect(!RouteFilter().isOrganic(path))
    }

    @Test("Normalization keeps organic pages organic", arguments: ["/", "/news/a", "//news", "/synced", "/a/../b"])
    func organicStaysOrganic(path: String) {
        #expect(RouteFilter().isOrganic(path))
    }

    @Test("A catch-all entry excludes everything")
    func catchAll() {
        #expect(!RouteFilter(excluded: ["/*"]).isOrganic("/anything"))
        #expect(!RouteFilter(excluded: ["/*"]).isOrganic("/"))
    }
}

@Suite("Route filter fast path")
struct RouteFilterFastPathTests {
    /// Every path of up to 6 characters over an alphabet with each feature normalization handles.
    static let paths: [String] = {
        let alphabet: [Character] = ["/", ".", "a", "A", "%", "?"]
        var paths = [""]
        var last = [""]
        for _ in 1...6 {
            last = last.flatMap { prefix in alphabet.map { prefix + String($0) } }
            paths += last
        }
        return paths
    }()

    @Test("A path taken as already normal is one that normalization leaves unchanged")
    func normalMeansUnchanged() {
        var normal = 0
        for path in Self.paths where RouteFilter.isNormal(path) {
            normal += 1
            #expect(RouteFilter.normalize(path) == path, "\(path)")
        }
        // The check is not vacuous: dozens of the paths take the fast path.
        #expect(normal > 50)
    }

    @Test(
        "Everyday paths take the fast path; those normalization changes don't",
        arguments: [
            ("/", true), ("/news/a", true), ("/index.html", true), ("/a/.../b", true), ("/a-b_c~d", true),
            ("", false), ("/News", false), ("/a/", false), ("//a", false), ("/a/./b", false), ("/a/..", false),
            ("/a?x", false), ("/a#b", false), ("/%61", false), ("a", false),
        ]
    )
    func fastPathTaken(path: String, normal: Bool) {
        #expect(RouteFilter.isNormal(path) == normal)
    }
}
