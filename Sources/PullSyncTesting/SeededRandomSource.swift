public import PullSyncKernel
import Synchronization

/// A deterministic random source (SplitMix64), safe to share between tasks: the one seeded
/// generator of the tests, for the kernel (`RandomSource`) and for the standard library's
/// `random(using:)` family (`RandomNumberGenerator`) alike, so that a failure replays.
public final class SeededRandomSource: RandomSource, RandomNumberGenerator {
    private let state: Mutex<UInt64>

    /// Creates a source whose sequence is fixed by `seed`.
    public init(seed: UInt64) {
        self.state = Mutex(seed)
    }

    public func next() -> UInt64 {
        state.withLock { state in
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}
