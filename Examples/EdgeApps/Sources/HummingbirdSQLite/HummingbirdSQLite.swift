import Foundation
import Hummingbird
import Logging
import PullSync
import PullSyncHummingbird

/// A Hummingbird app with pull sync on an SQLite store: partners from ./partners.d, UIDs in ./edge.db.
@main struct HummingbirdSQLite {
    static func main() async throws {
        let logger = Logger(label: "edge")
        // Development only: partners on loopback (plain HTTP) allowed, as in CI.
        let development = ProcessInfo.processInfo.environment["EDGE_DEVELOPMENT"] == "1"
        let pullSync = try await PullSyncService(
            configuration: .init(store: "sqlite:edge.db", pullSync: .init(allowLoopback: development)),
            logger: logger
        )
        let router = Router(context: EdgeRequestContext.self)  // it carries the browser's IP
        router.add(middleware: PullSyncMiddleware(pullSync))
        router.get("**") { _, _ in "Hello from the edge\n" }
        // Services start before the server, stop after it; the server hands pages over once written.
        let app = Application(router: router, server: .pullSyncHTTP1(), services: [pullSync], logger: logger)
        try await app.runService()
    }
}
