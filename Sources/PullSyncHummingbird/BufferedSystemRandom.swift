#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import PullSyncKernel
import Synchronization

/// The operating system's cryptographically secure randomness, read 4 KiB at a time and handed
/// out 8 bytes per draw. On Linux `SystemRandomSource` makes a system call per draw (about
/// 0.4 µs in a new browser's page view, for its EC's suffix); this makes one per 512 draws.
/// The bytes are the kernel's (`/dev/urandom`), kept only in this process's memory until drawn,
/// each handed out once (a process that forked would hand its unread bytes out in both; servers
/// embedding this don't fork). Where the device can't be read, each draw falls back to the
/// system's generator.
final class BufferedSystemRandom: RandomSource {
    /// One process-wide buffer: issuers share it.
    static let shared = BufferedSystemRandom(path: "/dev/urandom")

    private struct State {
        var words: [UInt64]
        /// The next word to hand out; `words.count` when all were drawn.
        var next: Int
    }

    private static let wordsPerRead = 512
    private let descriptor: Int32
    private let state: Mutex<State>

    /// - Parameter path: the random device (tests give another file, or none).
    init(path: String) {
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        state = Mutex(State(words: Array(repeating: 0, count: Self.wordsPerRead), next: Self.wordsPerRead))
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }

    func next() -> UInt64 {
        let word: UInt64? = state.withLock { state in
            if state.next == state.words.count {
                guard refill(&state.words) else { return nil }
                state.next = 0
            }
            defer {
                // Drawn bytes don't stay behind in memory.
                state.words[state.next] = 0
                state.next += 1
            }
            return state.words[state.next]
        }
        if let word { return word }
        var system = SystemRandomNumberGenerator()
        return system.next()
    }

    /// Fills `words` from the device; `false` when it can't be read in full.
    private func refill(_ words: inout [UInt64]) -> Bool {
        guard descriptor >= 0 else { return false }
        return words.withUnsafeMutableBytes { buffer in
            var filled = 0
            while filled < buffer.count {
                let count = read(descriptor, buffer.baseAddress! + filled, buffer.count - filled)
                if count > 0 {
                    filled += count
                } else if count < 0 && errno == EINTR {
                    continue
                } else {
                    return false
                }
            }
            return true
        }
    }
}
