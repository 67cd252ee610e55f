/// The `Retry-After` response header (RFC 9110 §10.2.3): delta-seconds or an HTTP-date.
///
/// Parsed by hand because the kernel is Foundation-free; every HTTP-date form a recipient must
/// accept (§5.6.7) is read: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the obsolete RFC 850
/// form (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`).
public enum RetryAfter {
    /// Values longer than this are not a `Retry-After` value; they are refused unread.
    static let maxLength = 64

    /// How long `value` asks the client to wait, measured from `now`: `.zero` for a date in the
    /// past, `nil` when the value is neither delta-seconds nor an HTTP-date. Not capped here.
    public static func delay(_ value: some StringProtocol, now: Timestamp) -> Duration? {
        let bytes = Array(value.utf8.prefix(maxLength + 1))
        guard bytes.count <= maxLength else { return nil }
        let trimmed = bytes.trimmingSpaces()
        guard !trimmed.isEmpty else { return nil }
        if trimmed.allSatisfy(isDigit) {
            // A delta of more digits than fit is a very long time: saturate, the caller caps it.
            var seconds: Int64 = 0
            for digit in trimmed {
                let (times, overflow) = seconds.multipliedReportingOverflow(by: 10)
                guard !overflow else { return .seconds(Int64.max / 1_000_000_000) }
                seconds = min(times + Int64(digit - 0x30), Int64.max / 1_000_000_000)
            }
            return .seconds(seconds)
        }
        guard let date = httpDate(trimmed) else { return nil }
        return date > now ? date - now : .zero
    }

    /// The first `Retry-After` header in `headers` (names compared case-insensitively), as a delay.
    public static func delay(in headers: [(name: String, value: String)], now: Timestamp) -> Duration? {
        guard let header = headers.first(where: { isRetryAfter($0.name) }) else { return nil }
        return delay(header.value, now: now)
    }

    private static func isRetryAfter(_ name: String) -> Bool {
        let expected = Array("retry-after".utf8)
        var index = 0
        for byte in name.utf8 {
            guard index < expected.count, lowercased(byte) == expected[index] else { return false }
            index += 1
        }
        return index == expected.count
    }

    /// An HTTP-date in any of its three forms, as a timestamp.
    static func httpDate(_ bytes: [UInt8]) -> Timestamp? {
        let words = bytes.split(separator: 0x20, omittingEmptySubsequences: true).map { Array($0) }
        // IMF-fixdate: "Sun," "06" "Nov" "1994" "08:49:37" "GMT"
        if words.count == 6, words[0].last == UInt8(ascii: ","), words[5] == Array("GMT".utf8) {
            guard words[0].count == 4, weekday(words[0].dropLast(), long: false),
                words[1].count == 2, let day = number(words[1]),
                let month = month(words[2]),
                words[3].count == 4, let year = number(words[3])
            else { return nil }
            return timestamp(year: year, month: month, day: day, time: words[4])
        }
        // RFC 850: "Sunday," "06-Nov-94" "08:49:37" "GMT"
        if words.count == 4, words[0].last == UInt8(ascii: ","), words[3] == Array("GMT".utf8) {
            let parts = words[1].split(separator: UInt8(ascii: "-"), omittingEmptySubsequences: false)
            guard weekday(words[0].dropLast(), long: true), parts.count == 3,
                parts[0].count == 2, let day = number(parts[0]),
                let month = month(parts[1]),
                parts[2].count == 2, let shortYear = number(parts[2])
            else { return nil }
            // RFC 9110: a two-digit year more than 50 years in the future is in the past century;
            // read against 2000 that is 70..99 → 19xx.
            let year = shortYear >= 70 ? 1900 + shortYear : 2000 + shortYear
            return timestamp(year: year, month: month, day: day, time: words[2])
        }
        // asctime: "Sun" "Nov" "6" "08:49:37" "1994"
        if words.count == 5 {
            guard weekday(words[0][...], long: false), let month = month(words[1]),
                (1...2).contains(words[2].count), let day = number(words[2]),
                words[4].count == 4, let year = number(words[4])
            else { return nil }
            return timestamp(year: year, month: month, day: day, time: words[3])
        }
        return nil
    }

    private static func timestamp(year: Int, month: Int, day: Int, time: [UInt8]) -> Timestamp? {
        let parts = time.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ $0.count == 2 }),
            let hour = number(parts[0]), let minute = number(parts[1]), let second = number(parts[2]),
            hour < 24, minute < 60, second <= 60,
            year >= 1900, (1...daysIn(month: month, year: year)).contains(day)
        else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second)
        // Past 2262 nanoseconds since 1970 don't fit in 64 bits: such a date is "the far
        // future", and the caller's cap decides (found by the response fuzzer: year 9999).
        guard seconds < Int64.max / 1_000_000_000 else { return Timestamp(nanosecondsSinceEpoch: .max) }
        return Timestamp(secondsSinceEpoch: seconds)
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    private static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .map { Array($0.utf8) }
    private static let shortDays = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].map { Array($0.utf8) }
    private static let longDays = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
        .map { Array($0.utf8) }

    private static func month(_ word: some Collection<UInt8>) -> Int? {
        months.firstIndex { $0.elementsEqual(word) }.map { $0 + 1 }
    }

    // The weekday is checked for form only; a date whose weekday disagrees is still that date.
    private static func weekday(_ word: some Collection<UInt8>, long: Bool) -> Bool {
        (long ? longDays : shortDays).contains { $0.elementsEqual(word) }
    }

    private static func number(_ digits: some Collection<UInt8>) -> Int? {
        guard !digits.isEmpty, digits.count <= 4, digits.allSatisfy(isDigit) else { return nil }
        return digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
    }

    private static func isDigit(_ byte: UInt8) -> Bool { (0x30...0x39).contains(byte) }

    private static func lowercased(_ byte: UInt8) -> UInt8 { (0x41...0x5A).contains(byte) ? byte | 0x20 : byte }
}

extension [UInt8] {
    fileprivate func trimmingSpaces() -> [UInt8] {
        let isSpace = { (byte: UInt8) in byte == 0x20 || byte == 0x09 }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return []
        }
        return Array(self[first...last])
    }
}
