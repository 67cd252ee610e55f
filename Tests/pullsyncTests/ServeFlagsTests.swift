import Testing

/// `pullsync serve` refuses flags it can't honour before it starts, naming the flag.
@Suite struct ServeFlagsTests {
    @Test(arguments: [
        (["--eids-header", "X-Eids"], "--eids-header needs --origin"),
        (["--origin", "http://127.0.0.1:9", "--eids-header", "X Eids"], "--eids-header 'X Eids' is not a valid header name"),
        (["--ec-idle-days", "0"], "--uid-max-age-days and --ec-idle-days must be at least 1"),
        (["--uid-max-age-days=-3"], "--uid-max-age-days and --ec-idle-days must be at least 1"),
        (["--cpu-pressure-limit", "101"], "--cpu-pressure-limit must be 0 to 100 (percent)"),
        (["--cpu-pressure-limit=-1"], "--cpu-pressure-limit must be 0 to 100 (percent)"),
    ])
    func refused(arguments: [String], message: String) async throws {
        let result = try await runPullSync(["serve", "--listen", "127.0.0.1:0", "--store", "memory:"] + arguments)
        #expect(result.status != 0)
        #expect(result.stderr.contains(message), "\(result.stderr)")
    }
}
