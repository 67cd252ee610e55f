import Synchronization

/// Randomness the kernel draws on (the fair order of partners). Injected so that tests are
/// deterministic; implementations must be safe to call from many tasks at once.
public protocol RandomSource: Sendable {
    /// A uniformly distributed 64-bit value.
    func next() -> UInt64
}

extension RandomSource {
    /// A uniform value in `0..<upperBound`, without modulo bias.
    public func next(below upperBound: Int) -> Int {
        precondition(upperBound > 0)
        let bound = UInt64(upperBound)
        let threshold = (0 &- bound) % bound
        while true {
            let value = next()
            if value >= threshold { return Int(value % bound) }
        }
    }
}

/// The system's cryptographically secure generator.
public struct SystemRandomSource: RandomSource {
    /// Creates the system random source.
    public init() {}

    public func next() -> UInt64 {
        var generator = SystemRandomNumberGenerator()
        return generator.next()
    }
}

/// A fast generator (SplitMix64), safe to share between tasks without a lock: the kernel's
/// default for the fair order of partners, which needs uniform draws but no secrecy. (The
/// system's generator makes a system call per draw on Linux, about 0.3 µs, and a request draws
/// once per candidate partner.) Not for secrets: its sequence follows from its seed.
public final class SplitMixRandomSource: RandomSource {
    private let state: Atomic<UInt64>

    /// Creates a generator seeded from the system's generator.
    public convenience init() {
        var system = SystemRandomNumberGenerator()
        self.init(seed: system.next())
    }

    /// Creates a generator whose sequence is fixed by `seed` (tests replay it).
    public init(seed: UInt64) {
        state = Atomic(seed)
    }

    public func next() -> UInt64 {
        var z = state.wrappingAdd(0x9E37_79B9_7F4A_7C15, ordering: .relaxed).newValue
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
