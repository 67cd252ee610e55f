/// A point in wall-clock time, in nanoseconds since the Unix epoch.
///
/// The identity graph stores when each UID was learned as wall-clock time, so that several
/// edge nodes (and restarts) agree on TTLs and rate-limit windows.
public struct Timestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Nanoseconds since 1970-01-01T00:00:00Z.
    public var nanosecondsSinceEpoch: Int64

    /// Creates the time `nanosecondsSinceEpoch` nanoseconds after the epoch.
    public init(nanosecondsSinceEpoch: Int64) {
        self.nanosecondsSinceEpoch = nanosecondsSinceEpoch
    }

    /// Whole seconds since the epoch.
    public init(secondsSinceEpoch: Int64) {
        self.nanosecondsSinceEpoch = secondsSinceEpoch * 1_000_000_000
    }

    /// Whole seconds since the epoch, rounded down.
    public var secondsSinceEpoch: Int64 {
        nanosecondsSinceEpoch >= 0
            ? nanosecondsSinceEpoch / 1_000_000_000
            : (nanosecondsSinceEpoch - 999_999_999) / 1_000_000_000
    }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        lhs.nanosecondsSinceEpoch < rhs.nanosecondsSinceEpoch
    }

    public static func + (lhs: Timestamp, rhs: Duration) -> Timestamp {
        Timestamp(nanosecondsSinceEpoch: lhs.nanosecondsSinceEpoch &+ rhs.nanoseconds)
    }

    public static func - (lhs: Timestamp, rhs: Duration) -> Timestamp {
        Timestamp(nanosecondsSinceEpoch: lhs.nanosecondsSinceEpoch &- rhs.nanoseconds)
    }

    public static func - (lhs: Timestamp, rhs: Timestamp) -> Duration {
        .nanoseconds(lhs.nanosecondsSinceEpoch &- rhs.nanosecondsSinceEpoch)
    }

    public var description: String { "\(secondsSinceEpoch)s" }
}

extension Duration {
    /// The duration in whole nanoseconds, saturating at `Int64` bounds.
    package var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return scaled &+ attoseconds / 1_000_000_000
    }

    /// The duration in seconds as a `Double`.
    package var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

/// The wall clock the kernel reads. Injected so that every time rule is testable, and so that
/// the kernel needs no C library: the system's clock, `SystemWallClock`, is in `PullSyncStorage`.
public protocol WallClock: Sendable {
    /// The current time.
    func now() -> Timestamp
}
