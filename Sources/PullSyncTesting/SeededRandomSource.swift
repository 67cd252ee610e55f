public import PullSyncKernel

/// A deterministic random source (the kernel's SplitMix64, ``SplitMixRandomSource``), safe to
/// share between tasks: the one seeded generator of the tests, for the kernel (`RandomSource`)
/// and for the standard library's `random(using:)` family (`RandomNumberGenerator`) alike, so
/// that a failure replays.
public final class SeededRandomSource: RandomSource, RandomNumberGenerator {
    private let generator: SplitMixRandomSource

    /// Creates a source whose sequence is fixed by `seed`.
    public init(seed: UInt64) {
        generator = SplitMixRandomSource(seed: seed)
    }

    public func next() -> UInt64 {
        generator.next()
    }
}
