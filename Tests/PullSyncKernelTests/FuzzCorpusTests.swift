import Foundation
import PullSyncKernel
import PartnerAdapterKit
import Testing

/// Replays the response fuzzer's committed corpus (`Fuzz/Corpus/response/`, findings included)
/// with the fuzz target's invariants, so every finding stays a regression test in the normal
/// suite. The input layout is the fuzz target's: status (2 bytes), UID path selector, header
/// count, `name:value\n` headers, body.
@Suite("Fuzz corpus: partner responses")
struct FuzzCorpusTests {
    static let folder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/Corpus/response")

    static var inputs: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).sorted()
    }

    static let paths: [[String]] = [["uid"], ["data", "user", "id"], ["a"], [""], ["uid", "uid"]]

    @Test("The corpus is there, findings included")
    func corpusPresent() {
        #expect(Self.inputs.count >= 20)
        #expect(Self.inputs.contains("finding-retry-after-year-9999.bin"))
    }

    @Test("Every input classifies within the invariants", arguments: inputs)
    func replay(_ name: String) throws {
        let bytes = Array(try Data(contentsOf: Self.folder.appendingPathComponent(name)))
        var rest = bytes[...]
        func take() -> UInt8 { rest.popFirst() ?? 0 }
        let status = 100 + (Int(take()) << 8 | Int(take())) % 500
        let uidPath = Self.paths[Int(take()) % Self.paths.count]
        var headers: [(name: String, value: String)] = []
        for _ in 0..<(Int(take()) % 8) {
            guard let end = rest.firstIndex(of: 0x0A) else { break }
            let line = rest[..<end]
            rest = rest[rest.index(after: end)...]
            let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.endIndex
            let value = colon < line.endIndex ? String(decoding: line[line.index(after: colon)...], as: UTF8.self) : ""
            headers.append((String(decoding: line[..<colon], as: UTF8.self), value))
        }
        let adapter = HTTPPullAdapter(
            configuration: HTTPPullAdapter.Configuration(
                url: PartnerURL(scheme: "https", host: "sync.fuzz.example", path: "/pull"),
                uidPath: uidPath,
                notFoundStatuses: [404, 410]
            ),
            token: nil
        )
        let now = Timestamp(secondsSinceEpoch: 1_767_225_600)
        let context = PullContext(
            edgeCookie: EdgeCookie(unchecked: String(repeating: "a", count: 64) + ".AbC123"),
            partnerID: "fuzz",
            sourceDomain: "fuzz.example",
            now: now
        )
        let outcome = adapter.classify(.response(status: status, headers: headers, body: Array(rest)), context: context)
        if case .uid(let uid, _) = outcome {
            #expect(status == 200)
            #expect(uid.utf8.count <= ResponseLimits.maxUIDBytes)
            #expect(uid.contains { !$0.isWhitespace })
        }
        if case .httpError(let code) = outcome { #expect(code == status) }
        if let delay = RetryAfter.delay(in: headers, now: now) { #expect(delay >= .zero) }
    }
}
