import Crypto
public import PullSyncKernel

/// Issues Edge Cookies: `hex(HMAC-SHA256(secret, client IP)) + "." + 6 random alphanumerics`.
///
/// The hash part is stable for one client IP and secret, so every edge node sharing the
/// secret derives the same hash; the suffix tells browsers behind one IP apart.
public struct EdgeCookieIssuer: Sendable {
    /// Behind one reference: the middleware holds an issuer, and a copy of the keyed HMAC's
    /// state (hundreds of bytes) on every page view showed in its profile.
    private let parts: Parts

    private final class Parts: Sendable {
        /// HMAC-SHA256 with the key already set up (its padded key hashed in): copied per EC, so
        /// an EC costs the hash of the IP, not the key schedule too.
        let keyed: HMAC<SHA256>
        let random: any RandomSource

        init(keyed: HMAC<SHA256>, random: any RandomSource) {
            self.keyed = keyed
            self.random = random
        }
    }

    private static let hex = Array("0123456789abcdef".utf8)
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)
    /// 62⁶: every suffix, drawn as one number (one draw from the system's generator, not six).
    private static let suffixes = 56_800_235_584

    /// - Parameters:
    ///   - secret: the HMAC key (at least 16 bytes; `PULLSYNC_EC_SECRET`, or one kept in the store).
    ///   - random: draws the suffix; `nil` (the default) for the system's secure generator, read a
    ///     few kilobytes at a time rather than with a system call per EC.
    public init(secret: [UInt8], random: (any RandomSource)? = nil) {
        precondition(secret.count >= 16, "an EC secret needs at least 16 bytes")
        self.parts = Parts(
            keyed: HMAC<SHA256>(key: SymmetricKey(data: secret)),
            random: random ?? BufferedSystemRandom.shared
        )
    }

    /// A new EC for a browser at `clientIP`.
    public func issue(clientIP: String) -> String {
        var hmac = parts.keyed
        var ip = clientIP
        ip.withUTF8 { hmac.update(data: UnsafeRawBufferPointer($0)) }
        let mac = hmac.finalize()
        var suffix = parts.random.next(below: Self.suffixes)
        // Written straight into the string's storage: one allocation.
        return String(unsafeUninitializedCapacity: 71) { buffer in
            var count = 0
            // Read in place: iterating the MAC copies its bytes into an array first.
            mac.withUnsafeBytes { bytes in
                for byte in bytes {
                    buffer[count] = Self.hex[Int(byte >> 4)]
                    buffer[count + 1] = Self.hex[Int(byte & 0x0F)]
                    count += 2
                }
            }
            buffer[count] = UInt8(ascii: ".")
            count += 1
            for _ in 0..<6 {
                buffer[count] = Self.alphabet[suffix % Self.alphabet.count]
                suffix /= Self.alphabet.count
                count += 1
            }
            return count
        }
    }
}
