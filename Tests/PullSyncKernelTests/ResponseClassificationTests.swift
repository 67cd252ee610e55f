import PullSyncKernel
import PartnerAdapterKit
import PullSyncTesting
import Testing

/// Spec "Behaviour" 7: every answer a partner can give, classified; only a UID is stored.
@Suite("Response classification")
struct ResponseClassificationTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var result: TransportResult
        var expected: PullOutcome
        var uidPath: [String] = ["uid"]
        var notFoundStatuses: Set<Int> = [404]
        var testDescription: String { name }

        static func ok(_ name: String, _ body: String, _ expected: PullOutcome, uidPath: [String] = ["uid"]) -> Case {
            Case(
                name: name,
                result: .response(status: 200, headers: [], body: Array(body.utf8)),
                expected: expected,
                uidPath: uidPath
            )
        }

        static func status(_ status: Int, _ expected: PullOutcome, notFound: Set<Int> = [404]) -> Case {
            Case(
                name: "status \(status) (not found: \(notFound.sorted()))",
                result: .response(status: status, headers: [], body: Array("{\"uid\":\"u\"}".utf8)),
                expected: expected,
                notFoundStatuses: notFound
            )
        }
    }

    static let uid512 = String(repeating: "u", count: 512)
    static let uid513 = String(repeating: "u", count: 513)
    /// 256 two-byte characters: 512 bytes.
    static let uid512TwoByte = String(repeating: "é", count: 256)

    /// A `{"uid":"abc"}` body padded with spaces to `size` bytes.
    static func padded(to size: Int) -> String {
        let body = "{\"uid\":\"abc\"}"
        return body + String(repeating: " ", count: size - body.utf8.count)
    }

    static let cases: [Case] = [
        .ok("200 with a uid", "{\"uid\":\"abc-123\"}", .uid("abc-123")),
        .ok("200 with a uid and other fields", "{\"id\":1,\"uid\":\"x\",\"ttl\":60}", .uid("x")),
        .ok("200 with a null uid", "{\"uid\": null}", .nullUID),
        .ok("200 without a uid", "{\"other\":\"x\"}", .nullUID),
        .ok("200 with an empty object", "{}", .nullUID),
        .ok("200 with an empty uid", "{\"uid\":\"\"}", .nullUID),
        .ok("200 with a blank uid", "{\"uid\":\"  \"}", .nullUID),
        .ok("200 with a whitespace uid", "{\"uid\":\"\\t\\n \"}", .nullUID),
        .status(404, .notFound),
        .status(204, .httpError(status: 204)),
        .status(302, .httpError(status: 302)),
        .status(429, .httpError(status: 429)),
        .status(500, .httpError(status: 500)),
        .status(404, .httpError(status: 404), notFound: [204]),
        .status(204, .notFound, notFound: [204]),
        .status(410, .notFound, notFound: [404, 410]),
        .ok("invalid JSON", "{\"uid\":", .invalidBody),
        .ok("not JSON at all", "uid=abc", .invalidBody),
        .ok("empty body", "", .invalidBody),
        .ok("a JSON array", "[{\"uid\":\"abc\"}]", .invalidBody),
        .ok("a JSON string", "\"abc\"", .invalidBody),
        .ok("a numeric uid", "{\"uid\":12345}", .invalidBody),
        .ok("a boolean uid", "{\"uid\":true}", .invalidBody),
        .ok("an object uid", "{\"uid\":{\"v\":\"abc\"}}", .invalidBody),
        .ok("a 512-byte uid", "{\"uid\":\"\(uid512)\"}", .uid(uid512)),
        .ok("a 512-byte uid of two-byte characters", "{\"uid\":\"\(uid512TwoByte)\"}", .uid(uid512TwoByte)),
        .ok("a 513-byte uid", "{\"uid\":\"\(uid513)\"}", .tooLarge),
        .ok("a 514-byte uid of two-byte characters", "{\"uid\":\"\(uid512TwoByte)é\"}", .tooLarge),
        .ok("a body of exactly 64 KiB", padded(to: 65_536), .uid("abc")),
        .ok("a body over 64 KiB", padded(to: 65_537), .tooLarge),
        .ok("nested uid path", "{\"data\":{\"user\":{\"id\":\"n-1\"}}}", .uid("n-1"), uidPath: ["data", "user", "id"]),
        .ok("nested uid path, missing leaf", "{\"data\":{\"user\":{}}}", .nullUID, uidPath: ["data", "user", "id"]),
        .ok("nested uid path, missing branch", "{\"data\":{}}", .nullUID, uidPath: ["data", "user", "id"]),
        .ok(
            "nested uid path, null leaf",
            "{\"data\":{\"user\":{\"id\":null}}}",
            .nullUID,
            uidPath: ["data", "user", "id"]
        ),
        .ok(
            "nested uid path, numeric leaf",
            "{\"data\":{\"user\":{\"id\":7}}}",
            .invalidBody,
            uidPath: ["data", "user", "id"]
        ),
        Case(name: "transport timeout", result: .failure(.timeout), expected: .timeout),
        Case(name: "transport error", result: .failure(.transportError), expected: .transportError),
        Case(name: "TLS error", result: .failure(.tlsError), expected: .tlsError),
        Case(name: "body over the transport limit", result: .failure(.tooLarge), expected: .tooLarge),
        Case(name: "target refused by the transport", result: .failure(.refusedTarget), expected: .refusedTarget),
    ]

    @Test("JSONValue reads every kind of value, each as itself")
    func everyKindOfValue() {
        let text = #"[1.5, -2, true, false, null, "s", "1", "true", {"a": [], "b": {"c": "d"}}, [[]]]"#
        #expect(
            JSONValue.parse(Array(text.utf8))
                == .array([
                    .number(1.5), .number(-2), .bool(true), .bool(false), .null, .string("s"), .string("1"),
                    .string("true"), .object(["a": .array([]), "b": .object(["c": .string("d")])]),
                    .array([.array([])]),
                ])
        )
    }

    @Test(
        "JSONValue.parseObject takes an object only",
        arguments: [
            (#"{"uid": "u", "n": 1}"#, ["uid": JSONValue.string("u"), "n": .number(1)]),
            (#"{}"#, [:]),
            (#"[{"uid": "u"}]"#, nil),
            (#""u""#, nil),
            ("null", nil),
            (#"{"uid": "u""#, nil),
        ] as [(String, [String: JSONValue]?)]
    )
    func objectOnly(text: String, expected: [String: JSONValue]?) {
        #expect(JSONValue.parseObject(Array(text.utf8)) == expected)
    }

    /// Documents and paths for the field lookup, each classified both ways.
    static let lookups: [(body: String, path: [String])] = [
        (#"{"uid":"a","uid":"b"}"#, ["uid"]),
        (#"{"u\u0069d":"escaped key"}"#, ["uid"]),
        (#"{"uid":"\u00e9\ud83d\ude00"}"#, ["uid"]),
        (#"{"data":"not an object"}"#, ["data", "id"]),
        (#"{"data":null}"#, ["data", "id"]),
        (#"{"data":["id"]}"#, ["data", "id"]),
        (#"{"data":{"id":"x"},"data":{"id":"y"}}"#, ["data", "id"]),
        (#"{"a":{"b":{"c":{"d":"deep"}}}}"#, ["a", "b", "c", "d"]),
        (#"{"uid":"x"}"#, []),
        (#"{"uid":"x","rest":[1,2,{"z":[true,null]}],"n":-1.5e3}"#, ["uid"]),
        (#"{"uid":"x","broken":[1,}"#, ["uid"]),
        (#"{"uid":"x"} trailing"#, ["uid"]),
        (#"  {"uid" : "spaced"}  "#, ["uid"]),
        (#"{"":"empty key"}"#, [""]),
        (#"{"uid":1e400}"#, ["uid"]),
        ("null", ["uid"]),
    ]

    @Test("The UID is read without decoding the rest: the same outcome as from the whole parsed document", arguments: lookups)
    func lookupMatchesWholeDocument(body: String, path: [String]) {
        let bytes = Array(body.utf8)
        let whole: PullOutcome =
            if case .object(let members)? = JSONValue.parse(bytes) {
                HTTPPullAdapter.extractUID(from: .object(members), path: path)
            } else {
                .invalidBody
            }
        #expect(HTTPPullAdapter.extractUID(from: bytes, path: path) == whole)
    }

    @Test("HTTPPullAdapter.classify", arguments: cases)
    func classify(_ scenario: Case) {
        let adapter = HTTPPullAdapter(
            configuration: HTTPPullAdapter.Configuration(
                url: PartnerURL(scheme: "https", host: "a.partner.example"),
                uidPath: scenario.uidPath,
                notFoundStatuses: scenario.notFoundStatuses
            ),
            token: nil
        )
        let context = PullContext(
            edgeCookie: EdgeCookie(unchecked: ec(1)),
            partnerID: "a",
            sourceDomain: "a.example",
            now: Timestamp(secondsSinceEpoch: 0)
        )

        #expect(adapter.classify(scenario.result, context: context) == scenario.expected)
    }

    @Test("Each transport failure maps to the outcome of the same name", arguments: TransportFailure.allCases)
    func transportFailureNames(failure: TransportFailure) {
        #expect(PullOutcome(failure).className == failure.rawValue)
    }

    @Test("Only a UID is stored; every other class stores nothing", arguments: cases)
    func throughTheKernel(_ scenario: Case) async throws {
        let partner = httpPartner(
            "a",
            token: Secret("t"),
            uidPath: scenario.uidPath,
            notFoundStatuses: scenario.notFoundStatuses
        )
        let harness = try Harness(partners: [partner])
        harness.transport.script(TestPartners.host("a"), ScriptedTransport.Reply(scenario.result))
        try await harness.seed(1)

        let report = await harness.kernel.process(request(1))

        let result = try #require(report.results.first)
        #expect(report.results.count == 1)
        #expect(result.outcome == scenario.expected)
        #expect(
            harness.counter("pullsync_outcomes_total", [("partner", "a"), ("outcome", scenario.expected.className)])
                == 1
        )
        let stored = try await harness.storedUID(1, "a")
        if case .uid(let value, _) = scenario.expected {
            #expect(result.write == .stored)
            #expect(stored == PartnerUID(uid: value, syncedAt: harness.clock.now()))
        } else {
            #expect(result.write == nil)
            #expect(stored == nil)
            #expect(harness.counter("pullsync_writes_total", [("partner", "a"), ("result", "stored")]) == 0)
        }
    }

    @Test("A failed call is not retried within the request; the next request tries again")
    func noRetry() async throws {
        let harness = try Harness(partners: partners(["a"]), fallback: .status(503))
        try await harness.seed(1)

        _ = await harness.kernel.process(request(1))
        #expect(harness.calls("a") == 1)
        harness.transport.script(TestPartners.host("a"), .uid("later"))
        _ = await harness.kernel.process(request(1))

        #expect(harness.calls("a") == 2)
        #expect(try await harness.storedUID(1, "a")?.uid == "later")
    }

    @Test("A reply slower than the partner's timeout is a timeout")
    func slowReplyTimesOut() async throws {
        let harness = try Harness(partners: [TestPartners.partner("a", timeout: .milliseconds(10))])
        harness.transport.script(TestPartners.host("a"), .uid("late", after: .milliseconds(50)))
        try await harness.seed(1)

        let report = await harness.kernel.process(request(1))

        #expect(report.results.map(\.outcome) == [.timeout])
        #expect(
            harness.transport.records.first?.limits == TransportLimits(timeout: .milliseconds(10), maxBodyBytes: 65_536)
        )
        #expect(try await harness.storedUID(1, "a") == nil)
    }
}
