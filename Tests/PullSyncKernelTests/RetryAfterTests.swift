import PullSyncKernel
import Testing

/// `Retry-After` values (RFC 9110 §10.2.3): delta-seconds and the three HTTP-date forms.
@Suite("Retry-After")
struct RetryAfterTests {
    /// 1994-11-06T08:49:37Z, the RFC's example date.
    let rfcDate = Timestamp(secondsSinceEpoch: 784_111_777)

    @Test(
        "Delta-seconds",
        arguments: [("120", 120), (" 7 ", 7), ("0", 0), ("0030", 30), ("\t5", 5)] as [(String, Int64)]
    )
    func deltaSeconds(value: String, seconds: Int64) {
        #expect(RetryAfter.delay(value, now: rfcDate) == .seconds(seconds))
    }

    @Test(
        "HTTP-dates in every form are read relative to now",
        arguments: [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ]
    )
    func httpDates(value: String) {
        #expect(RetryAfter.delay(value, now: rfcDate - .seconds(90)) == .seconds(90))
        // A date in the past asks for no wait at all.
        #expect(RetryAfter.delay(value, now: rfcDate + .seconds(5)) == .zero)
    }

    @Test("Dates across leap days and centuries convert exactly")
    func calendar() {
        let now = Timestamp(secondsSinceEpoch: 0)
        #expect(RetryAfter.delay("Thu, 01 Jan 1970 00:00:10 GMT", now: now) == .seconds(10))
        #expect(RetryAfter.delay("Tue, 29 Feb 2000 00:00:00 GMT", now: now) == .seconds(951_782_400))
        #expect(RetryAfter.delay("Thu, 01 Jan 2026 00:00:00 GMT", now: now) == .seconds(1_767_225_600))
        #expect(RetryAfter.delay("Tue, 29 Feb 2100 00:00:00 GMT", now: now) == nil)
    }

    @Test(
        "Anything else is no Retry-After at all",
        arguments: [
            "", "  ", "-5", "1.5", "5s", "soon", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 Nov 1994 25:00:00 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT", "Xyz, 06 Nov 1994 08:49:37 GMT",
            "Sun, 6 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 94 08:49:37 GMT", "Sun Nov  6 08:49 1994",
            String(repeating: "9", count: 65), "1\u{0}", "١٢٣",
        ]
    )
    func refused(value: String) {
        #expect(RetryAfter.delay(value, now: rfcDate) == nil)
    }

    @Test("A delta too large for any clock saturates instead of overflowing")
    func hugeDelta() {
        let delay = RetryAfter.delay(String(repeating: "9", count: 40), now: rfcDate)
        #expect(delay.map { $0 > .seconds(1_000_000_000) } == true)
    }

    @Test("A date past 2262 (beyond 64-bit nanoseconds) is the far future, not a crash (fuzzer finding)")
    func farFuture() {
        let delay = RetryAfter.delay("Sun, 06 Nov 9194 08:49:37 GMT", now: rfcDate)
        #expect(delay.map { $0 > .seconds(100 * 365 * 86_400) } == true)
        #expect(RetryAfter.delay("Fri, 31 Dec 9999 23:59:59 GMT", now: rfcDate) != nil)
    }

    @Test("The header is found whatever its case; the first one counts")
    func headerLookup() {
        let headers: [(name: String, value: String)] = [
            ("Content-Type", "application/json"), ("retry-AFTER", "12"), ("Retry-After", "99"),
        ]
        #expect(RetryAfter.delay(in: headers, now: rfcDate) == .seconds(12))
        #expect(RetryAfter.delay(in: [("Retry-After-X", "5")], now: rfcDate) == nil)
        #expect(RetryAfter.delay(in: [], now: rfcDate) == nil)
    }
}
