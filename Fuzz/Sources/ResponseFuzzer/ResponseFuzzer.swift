import FuzzDriver
import PartnerAdapterKit
import PullSyncKernel


/// libFuzzer's entry: a partner's answer, laid out as
/// `status (2 bytes) | uid path selector (1) | header count (1) | headers "name: value\n"… | body`.
/// Every classification must be one of the outcome classes, and a stored UID must be within
/// limits; `Retry-After` reading must never trap. `Tests/PullSyncKernelTests/FuzzCorpusTests.swift`
/// replays the corpus.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzResponse(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    let answer = FuzzedAnswer(bytes)
    let now = Timestamp(secondsSinceEpoch: 1_767_225_600)
    let outcome = answer.classify(now: now)
    if case .uid(let uid, _) = outcome {
        precondition(answer.status == 200, "a UID from a non-200 answer")
        // The kernel's `ResponseLimits.maxUIDBytes` (package-internal).
        precondition(uid.utf8.count <= 512, "a UID over the limit")
        precondition(!uid.allSatisfy(\.isWhitespace), "a blank UID")
    }
    if case .httpError(let status) = outcome { precondition(status == answer.status) }
    if let delay = RetryAfter.delay(in: answer.headers, now: now) { precondition(delay >= .zero) }
    return 0
}

/// A fuzzer input read as a partner's answer.
struct FuzzedAnswer {
    var status: Int
    var uidPath: [String]
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    static let paths: [[String]] = [["uid"], ["data", "user", "id"], ["a"], [""], ["uid", "uid"]]

    init(_ bytes: [UInt8]) {
        var rest = bytes[...]
        func take() -> UInt8 { rest.popFirst() ?? 0 }
        status = 100 + (Int(take()) << 8 | Int(take())) % 500
        uidPath = Self.paths[Int(take()) % Self.paths.count]
        let headerCount = Int(take()) % 8
        headers = []
        for _ in 0..<headerCount {
            guard let end = rest.firstIndex(of: 0x0A) else { break }
            let line = rest[..<end]
            rest = rest[rest.index(after: end)...]
            let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.endIndex
            let name = String(decoding: line[..<colon], as: UTF8.self)
            let value = colon < line.endIndex ? String(decoding: line[line.index(after: colon)...], as: UTF8.self) : ""
            headers.append((name, value))
        }
        body = Array(rest)
    }

    func classify(now: Timestamp) -> PullOutcome {
        let adapter = HTTPPullAdapter(
            configuration: HTTPPullAdapter.Configuration(
                url: PartnerURL(scheme: "https", host: "sync.fuzz.example", path: "/pull"),
                auth: .none,
                uidPath: uidPath,
                notFoundStatuses: [404, 410]
            ),
            token: nil
        )
        let context = PullContext(
            edgeCookie: EdgeCookie(unchecked: String(repeating: "a", count: 64) + ".AbC123"),
            partnerID: "fuzz",
            sourceDomain: "fuzz.example",
            now: now
        )
        return adapter.classify(.response(status: status, headers: headers, body: body), context: context)
    }
}

@main
enum ResponseFuzzerMain {
    static func main() { runLibFuzzer { fuzzResponse($0, $1) } }
}
