import Foundation
import PullSyncTesting
import Testing

/// `scripts/test-postgres`, which the store tests (and CI) start their servers with.
@Suite("scripts/test-postgres", .enabled(if: TestPostgres.serverBinariesInstalled))
struct TestPostgresScriptTests {
    /// Foundation's `Process` learns that a child ended from a socket the child inherits; a server
    /// that kept it would make `start` never end for its caller. A test process with 250
    /// descriptors open hands that socket down at 255, where bash keeps its copy of a script: the
    /// script kept it, and a whole test run hung.
    @Test("start returns while its server runs, even with a caller's descriptor at 255")
    func startReturnsWhileItsServerRuns() async throws {
        let cluster = try TestCluster.make(name: "fds")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        // Standard output at 255 as well: reading it to its end ends only when nothing holds it.
        process.arguments = [
            "-c", #"exec 255>&1; exec "$0" start "$1" "$2" "$3""#,
            packageRoot.appendingPathComponent("scripts/test-postgres").path,
            cluster.folder, "\(cluster.port)", "\(getpid())",
        ]
        let started: Result<ChildProcessResult, any Error>
        do {
            started = .success(try await runToCompletion(process, within: .seconds(120)))
        } catch {
            started = .failure(error)
        }
        _ = try? await cluster.run("stop")
        // ChildProcessDidNotEnd if start waited for its server.
        let result = try started.get()
        #expect(result.status == 0)
        let url = String(decoding: result.stdout, as: UTF8.self)
        #expect(url.hasPrefix("postgres://postgres@127.0.0.1:\(cluster.port)/"))
    }
}
