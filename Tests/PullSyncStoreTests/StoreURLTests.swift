import PullSync
import PullSyncStorage
import PullSyncEdge
import PullSyncTesting
import Testing

@Suite("Store URLs")
struct StoreURLTests {
    @Test(
        "Good URLs parse to their parts",
        arguments: [
            ("memory:", "memory:"),
            ("sqlite:pullsync.db", "sqlite:pullsync.db"),
            ("sqlite:///var/lib/pullsync/store.db", "sqlite:/var/lib/pullsync/store.db"),
            ("postgres://edge@db.internal/pullsync", "postgres://edge@db.internal:5432/pullsync"),
            ("postgresql://edge:s3cret@10.0.0.5:6543/ids", "postgres://edge@10.0.0.5:6543/ids"),
            (
                "postgres://edge@[::1]:5433/ids?schema=Edge_1&sslmode=require",
                "postgres://edge@[::1]:5433/ids?schema=edge_1&sslmode=require"
            ),
            ("postgres://edge@x/ids?host=/run/postgresql", "postgres://edge@/run/postgresql:5432/ids"),
        ]
    )
    func good(url: String, shown: String) throws {
        #expect(try StoreURL(parsing: url).description == shown)
    }

    @Test("Percent-encoded credentials are decoded; the password is never shown")
    func credentials() throws {
        guard case .postgres(let parsed) = try StoreURL(parsing: "postgres://ed%40ge:p%3Ass@h/db") else {
            Issue.record("not a postgres URL")
            return
        }
        #expect(parsed.username == "ed@ge")
        #expect(parsed.password == "p:ss")
        #expect(!parsed.description.contains("p:ss"))
    }

    @Test(
        "Bad URLs are refused with the problem named, never echoing a password",
        arguments: [
            ("redis://x", "unknown store URL 'redis://x'"),
            ("sqlite:", "needs a file path"),
            ("postgres://h/db", "a user is required"),
            ("postgres://u:hunter2@h", "a database name is required"),
            ("postgres://u:hunter2@h:99999/db", "the port must be a number from 1 to 65535"),
            ("postgres://u@h/db?schema=1x", "schema must be letters"),
            ("postgres://u@h/db?schema=a;drop", "schema must be letters"),
            ("postgres://u@h/db?sslmode=maybe", "sslmode must be one of disable, prefer, require"),
            ("postgres://u:hunter2@h/db?pool=3", "unknown parameter 'pool'"),
        ]
    )
    func bad(url: String, problem: String) {
        #expect {
            try StoreURL(parsing: url)
        } throws: { error in
            let text = "\(error)"
            return text.contains(problem) && !text.contains("hunter2")
        }
    }

    @Test("Opening a PostgreSQL store that can't be reached fails with the URL (no password) and the cause")
    func unreachable() async throws {
        let held = try HeldPort()
        defer { held.release() }
        let port = held.port
        await #expect {
            _ = try await StoreURL.open("postgres://u:hunter2@127.0.0.1:\(port)/db", drivers: [.memory, .sqlite, .postgres], logger: .init(label: "t"))
        } throws: { error in
            let text = "\(error)"
            return text.hasPrefix("cannot open store postgres://u@127.0.0.1:\(port)/db") && !text.contains("hunter2")
        }
    }
}
