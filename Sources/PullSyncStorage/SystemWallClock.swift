#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
public import PullSyncKernel

/// The system's real-time clock (`CLOCK_REALTIME`).
///
/// Here rather than beside `WallClock` in the kernel, which reads time only through that protocol
/// and so needs no C library; this is the first module above it that the stores and the service
/// share, and `import PullSync` brings it.
public struct SystemWallClock: WallClock {
    /// Creates the system wall clock.
    public init() {}

    public func now() -> Timestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Timestamp(nanosecondsSinceEpoch: Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec))
    }
}
