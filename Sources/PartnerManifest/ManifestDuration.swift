/// Durations as manifests write them: a non-negative integer of seconds (`30`), or a number with
/// one unit (`500ms`, `1.5s`, `5m`, `24h`, `1d`).
enum ManifestDuration {
    /// How to write one, for messages.
    static let hint = "write a number with a unit: 500ms, 2s, 5m, 24h, 1d"

    /// Parses `text`; `plain` says whether the scalar was unquoted (only then is a bare integer
    /// a number of seconds).
    static func parse(_ text: String, plain: Bool) -> Duration? {
        let number = text.utf8.prefix { (0x30...0x39).contains($0) || $0 == UInt8(ascii: ".") }
        let parts = number.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false).map {
            String(decoding: $0, as: UTF8.self)
        }
        // At most 12 digits, and at most 9 after the point.
        guard parts.count <= 2, (1...12).contains(parts[0].count), parts.count == 1 || (1...9).contains(parts[1].count)
        else { return nil }
        let second: Int128 = 1_000_000_000_000_000_000  // in attoseconds
        let unit: Int128
        switch String(decoding: text.utf8.dropFirst(number.count), as: UTF8.self) {
        case "" where plain && parts.count == 1: unit = second
        case "ms": unit = second / 1000
        case "s": unit = second
        case "m": unit = 60 * second
        case "h": unit = 3600 * second
        case "d": unit = 86_400 * second
        default: return nil
        }
        var total = Int128(parts[0])! * unit
        if parts.count == 2 {
            total += Int128(parts[1])! * unit / parts[1].utf8.reduce(1) { scale, _ in scale * 10 }
        }
        return Duration(secondsComponent: Int64(total / second), attosecondsComponent: Int64(total % second))
    }
}
