/// Durations as manifests write them: a non-negative integer of seconds (`30`), or a number with
/// one unit (`500ms`, `1.5s`, `5m`, `24h`, `1d`).
enum ManifestDuration {
    /// How to write one, for messages.
    static let hint = "write a number with a unit: 500ms, 2s, 5m, 24h, 1d"

    /// Parses `text`; `plain` says whether the scalar was unquoted (only then is a bare integer
    /// a number of seconds).
    static func parse(_ text: String, plain: Bool) -> Duration? {
        let bytes = Array(text.utf8)
        var index = 0
        let integerStart = index
        while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        let integerDigits = bytes[integerStart..<index]
        guard !integerDigits.isEmpty, integerDigits.count <= 12 else { return nil }
        var fractionDigits: ArraySlice<UInt8> = []
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            let fractionStart = index
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            fractionDigits = bytes[fractionStart..<index]
            guard !fractionDigits.isEmpty, fractionDigits.count <= 9 else { return nil }
        }
        let unit = String(decoding: bytes[index...], as: UTF8.self)
        let attosecondsPerUnit: Int128
        switch unit {
        case "" where plain && fractionDigits.isEmpty && index > integerStart:
            attosecondsPerUnit = 1_000_000_000_000_000_000
        case "ms": attosecondsPerUnit = 1_000_000_000_000_000
        case "s": attosecondsPerUnit = 1_000_000_000_000_000_000
        case "m": attosecondsPerUnit = 60 * 1_000_000_000_000_000_000
        case "h": attosecondsPerUnit = 3600 * 1_000_000_000_000_000_000
        case "d": attosecondsPerUnit = 86_400 * 1_000_000_000_000_000_000
        default: return nil
        }
        var total = value(of: integerDigits) * attosecondsPerUnit
        if !fractionDigits.isEmpty {
            var scale: Int128 = 1
            for _ in fractionDigits { scale *= 10 }
            total += value(of: fractionDigits) * attosecondsPerUnit / scale
        }
        let perSecond: Int128 = 1_000_000_000_000_000_000
        return Duration(
            secondsComponent: Int64(total / perSecond),
            attosecondsComponent: Int64(total % perSecond)
        )
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    private static func value(of digits: ArraySlice<UInt8>) -> Int128 {
        digits.reduce(0) { $0 * 10 + Int128($1 - UInt8(ascii: "0")) }
    }
}
