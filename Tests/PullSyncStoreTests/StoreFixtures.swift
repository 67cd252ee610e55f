import Foundation
import Logging
import PullSync
import PullSyncStorage
import PullSyncEdge
import PullSyncPostgres
import PullSyncSQLite
import PullSyncTesting
import Synchronization
import Testing

/// The stores every behaviour test runs against.
enum StoreKind: String, CustomTestStringConvertible, Sendable, CaseIterable {
    case memory, sqlite, postgres

    var testDescription: String { rawValue }

    /// Every kind this machine can run: PostgreSQL when `PULLSYNC_TEST_POSTGRES_URL` is set or
    /// the server binaries are installed (the suite then starts a throwaway cluster).
    static let available: [StoreKind] = TestPostgres.isAvailable ? allCases : [.memory, .sqlite]

    /// Kinds whose data outlives the store object.
    static let persistent: [StoreKind] = available.filter { $0 != .memory }
}

/// A store opened for one test: a fresh SQLite file or a fresh PostgreSQL schema.
struct OpenedStore: Sendable {
    let kind: StoreKind
    let store: any PullSyncStore
    /// The URL that opens the same data again (`memory:` opens a new, empty store).
    let url: String
}

/// Opens a fresh store of `kind`, runs its services around `body`, then stops them.
func withStore<T: Sendable>(
    _ kind: StoreKind,
    url reuse: String? = nil,
    _ body: @Sendable (OpenedStore) async throws -> T
) async throws -> T {
    let url: String
    if let reuse { url = reuse } else { url = try await freshURL(kind) }
    var logger = Logger(label: "store-test")
    logger.logLevel = .warning
    let store: any PullSyncStore
    if kind == .postgres {
        // The suite runs hundreds of tests at once on two cores, where 200 concurrent
        // statements on one row can wait longer than the 2 s default. These tests check results;
        // the timeout's behaviour is PostgresOutageTests'.
        store = try await PostgresStore.open(
            PostgresStoreURL(parsing: url),
            operationTimeout: busyMachineTimeout,
            logger: logger
        )
    } else {
        store = try await StoreURL.open(url, drivers: [.memory, .sqlite, .postgres], logger: logger)
    }
    return try await store.whileRunning { try await body(OpenedStore(kind: kind, store: store, url: url)) }
}

/// A URL for empty data of `kind`.
func freshURL(_ kind: StoreKind) async throws -> String {
    switch kind {
    case .memory:
        return "memory:"
    case .sqlite:
        return "sqlite:" + sqliteTestFolder.appendingPathComponent("\(UUID().uuidString).db").path
    case .postgres:
        return try await TestPostgres.shared.freshURL()
    }
}

/// This test process's SQLite files, in a folder of its own that is removed when the process
/// exits (a test may reopen its file, so none is removed before then).
private let sqliteTestFolder: URL = {
    try? FileManager.default.createDirectory(at: sqliteTestFolderPath, withIntermediateDirectories: true)
    // The exit handler can't capture: it reads the global.
    atexit { try? FileManager.default.removeItem(at: sqliteTestFolderPath) }
    return sqliteTestFolderPath
}()

private let sqliteTestFolderPath = FileManager.default.temporaryDirectory
    .appendingPathComponent("pullsync-store-tests-\(ProcessInfo.processInfo.processIdentifier)")

/// The PostgreSQL the tests use: `PULLSYNC_TEST_POSTGRES_URL` when set (CI starts one), else a
/// throwaway cluster started once per test process with `scripts/test-postgres` and stopped
/// when the process exits. Each test gets a schema of its own.
actor TestPostgres {
    static let shared = TestPostgres()

    static let environmentURL = ProcessInfo.processInfo.environment["PULLSYNC_TEST_POSTGRES_URL"]
        .flatMap { $0.isEmpty ? nil : $0 }

    static var isAvailable: Bool { environmentURL != nil || serverBinariesInstalled }

    static var serverBinariesInstalled: Bool {
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        return versions.contains {
            FileManager.default.isExecutableFile(atPath: "/usr/lib/postgresql/\($0)/bin/initdb")
        }
    }

    /// The server's URL once started; every caller awaits the same start (the actor is
    /// reentrant across the start's suspension, so a plain "started?" flag would start two).
    private var base: Task<String, any Error>?

    /// A URL for an empty schema of its own.
    func freshURL() async throws -> String {
        let starting = base ?? Task { try await Self.start() }
        base = starting
        let url = try await starting.value
        let schema = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20)
        return url + (url.contains("?") ? "&" : "?") + "schema=\(schema)"
    }

    private static func start() async throws -> String {
        if let url = environmentURL { return url }
        return try await TestCluster.make(name: "shared").start()
    }
}

/// A PostgreSQL cluster of its own, driven by `scripts/test-postgres` (the outage tests stop
/// and start theirs).
struct TestCluster: Sendable {
    let folder: String
    var port: Int = 0

    static func make(name: String) throws -> TestCluster {
        // Under /tmp: the server runs as `postgres` when tests run as root, and must reach it.
        let folder = "/tmp/pullsync-pg-\(getpid())-\(name)-\(UInt32.random(in: 0...UInt32.max))"
        return TestCluster(folder: folder, port: try freePort())
    }

    /// Starts the cluster (creating it the first time); returns its store URL. The cluster is
    /// stopped and deleted when this test process exits.
    func start() async throws -> String {
        try await run("start", "\(port)", "\(getpid())").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @discardableResult
    func run(_ arguments: String...) async throws -> String {
        let process = Process()
        process.executableURL = packageRoot.appendingPathComponent("scripts/test-postgres")
        process.arguments = [arguments[0], folder] + arguments.dropFirst()
        let result = try await runToCompletion(process)
        guard result.status == 0 else {
            throw ClusterError(
                description: "test-postgres \(arguments[0]) failed: \(String(decoding: result.stderr, as: UTF8.self))"
            )
        }
        return String(decoding: result.stdout, as: UTF8.self)
    }

    struct ClusterError: Error, CustomStringConvertible {
        var description: String
    }
}

/// The package root (this file is `Tests/PullSyncStoreTests/StoreFixtures.swift`).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// A TCP port nobody listens on right now, let go for a server of the test's own to bind (which
/// another test's server could take first; where nobody must listen, hold a ``HeldPort``).
func freePort() throws -> Int {
    let held = try HeldPort()
    defer { held.release() }
    return held.port
}

// MARK: Test data

let t0 = Timestamp(secondsSinceEpoch: 1_800_000_000)

/// EC `n` as the kernel sees it.
func edgeCookie(_ n: Int) -> EdgeCookie { EdgeCookie(unchecked: TestPartners.edgeCookie(n)) }

func ecHash(_ n: Int) -> String { edgeCookie(n).hashString }

/// The rate-limit key of `partner`'s calls for the EC hashed `ecHash` (`pull:{partner}:{ecHash}`).
func pullKey(_ partner: String, _ ecHash: String) -> RateLimitKey { RateLimitKey(partnerID: partner, ecHash: ecHash) }

func uid(_ value: String, at time: Timestamp = t0, expires: Timestamp? = nil) -> PartnerUID {
    PartnerUID(uid: value, syncedAt: time, expiresAt: expires)
}

/// Runs the store's clean-up at `now`; returns the rows removed.
func sweepExpired(_ opened: OpenedStore, at now: Timestamp) async throws -> Int {
    switch opened.store {
    case let store as SQLiteStore: try await store.sweep(at: now)
    case let store as PostgresStore: try await store.sweep(at: now)
    default: 0
    }
}

/// The PostgreSQL operation timeout of tests that check results, not the timeout: the suite runs
/// hundreds of tests at once on two cores (and beside other builds), where statements can wait
/// far longer than the 2 s default. The timeout's behaviour is PostgresUnansweredTests' and
/// PostgresOutageTests'.
let busyMachineTimeout = Duration.seconds(15)
