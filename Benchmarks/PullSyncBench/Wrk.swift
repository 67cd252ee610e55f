import Foundation

/// Runs `wrk` with a generated Lua script and reads the figures the script's `done` prints.
struct Wrk {
    struct Result {
        var requests: Int
        var seconds: Double
        var errors: Int
        var non2xx: Int
        var p50: Double
        var p90: Double
        var p99: Double
        var max: Double

        var perSecond: Double { Double(requests) / seconds }
    }

    /// How each request is made.
    enum Traffic {
        /// A known EC from this list in the `ts-ec` cookie, in turn.
        case knownECs([String])
        /// No cookie and a new client IP (`X-Forwarded-For`) every request: the edge issues a new EC,
        /// eligible at once. `firstIP` numbers the first one, so runs never repeat an IP.
        case newECs(firstIP: Int)
    }

    var connections: Int
    var duration: Int
    /// Each connection's pause between requests (ms), to offer a bounded rate; 0 for as fast as possible.
    var pauseMS: Int = 0
    var scratch: URL

    func run(url: String, traffic: Traffic) throws -> Result {
        let script = scratch.appendingPathComponent("wrk-\(UUID().uuidString.prefix(8)).lua")
        try luaScript(traffic).write(to: script, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: script) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/wrk")
        process.arguments = [
            "-t1", "-c\(connections)", "-d\(duration)s", "--timeout", "10s", "-s", script.path, url + "/articles/1",
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("BENCH ") }) else {
            throw BenchError("wrk printed no result: \(text)")
        }
        var fields: [String: Double] = [:]
        for pair in line.dropFirst(6).split(separator: " ") {
            let parts = pair.split(separator: "=")
            if parts.count == 2, let value = Double(parts[1]) { fields[String(parts[0])] = value }
        }
        let non2xx = text.firstMatch(of: #/Non-2xx or 3xx responses: (\d+)/#).flatMap { Int($0.output.1) } ?? 0
        return Result(
            requests: Int(fields["requests"] ?? 0),
            seconds: (fields["duration_us"] ?? 1) / 1e6,
            errors: Int(fields["errors"] ?? 0),
            non2xx: non2xx,
            p50: (fields["p50_us"] ?? 0) / 1000,
            p90: (fields["p90_us"] ?? 0) / 1000,
            p99: (fields["p99_us"] ?? 0) / 1000,
            max: (fields["max_us"] ?? 0) / 1000
        )
    }

    private func luaScript(_ traffic: Traffic) -> String {
        var lua = "local n = 0\n"
        switch traffic {
        case .knownECs(let ecs):
            lua += "local ecs = {\n" + ecs.map { "\"\($0)\"," }.joined(separator: "\n") + "\n}\n"
            lua += """
                request = function()
                  n = n + 1
                  return wrk.format("GET", "/articles/" .. (n % 1000), {["Cookie"] = "ts-ec=" .. ecs[n % #ecs + 1]})
                end

                """
        case .newECs(let firstIP):
            lua += """
                local first = \(firstIP)
                request = function()
                  local i = first + n
                  n = n + 1
                  local ip = "10." .. (math.floor(i / 65536) % 256) .. "." .. (math.floor(i / 256) % 256) .. "." .. (i % 256)
                  return wrk.format("GET", "/articles/" .. (n % 1000), {["X-Forwarded-For"] = ip})
                end

                """
        }
        if pauseMS > 0 { lua += "delay = function() return \(pauseMS) end\n" }
        lua += """
            done = function(summary, latency, requests)
              local e = summary.errors
              io.write(string.format("BENCH requests=%d duration_us=%d errors=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d\\n",
                summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout,
                latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
            end

            """
        return lua
    }
}
