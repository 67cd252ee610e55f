import Crypto
public import PullSyncKernel

/// Issues Edge Cookies: `hex(HMAC-SHA256(secret, client IP)) + "." + 6 random alphanumerics`.
///
/// The hash part is stable for one client IP and secret, so every edge node sharing the
/// secret derives the same hash; the suffix tells browsers behind one IP apart.
public struct EdgeCookieIssuer: Sendable {
    private let key: SymmetricKey
    private let random: any RandomSource

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)

    /// - Parameters:
    ///   - secret: the HMAC key (at least 16 bytes; `PULLSYNC_EC_SECRET`, or one kept in the store).
    ///   - random: draws the suffix.
    public init(secret: [UInt8], random: any RandomSource = SystemRandomSource()) {
        precondition(secret.count >= 16, "an EC secret needs at least 16 bytes")
        self.key = SymmetricKey(data: secret)
        self.random = random
    }

    /// A new EC for a browser at `clientIP`.
    public func issue(clientIP: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array(clientIP.utf8), using: key)
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(71)
        for byte in mac {
            bytes.append(hex[Int(byte >> 4)])
            bytes.append(hex[Int(byte & 0x0F)])
        }
        bytes.append(UInt8(ascii: "."))
        for _ in 0..<6 { bytes.append(Self.alphabet[random.next(below: Self.alphabet.count)]) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
