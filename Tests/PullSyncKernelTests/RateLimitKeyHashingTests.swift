import PullSyncKernel
import Testing

/// `RateLimitKey` hashes its EC hash's value worked out once (``ECHash``): keys made either way,
/// or changed through the public property, must still hash and compare by their text.
@Suite struct RateLimitKeyHashingTests {
    static let ecHash = String(repeating: "ab", count: 32)

    @Test("Keys from a Substring, a String and an EC's hash key are one key")
    func sameKeyEveryWay() {
        let edgeCookie = EdgeCookie(unchecked: Self.ecHash + ".AbC123")
        let keys = [
            RateLimitKey(partnerID: "a", ecHash: Self.ecHash),
            RateLimitKey(partnerID: "a", ecHash: Self.ecHash[...]),
            RateLimitKey(partnerID: "a", ecHash: edgeCookie.hashKey),
            RateLimitKey(partnerID: "a", ecHash: edgeCookie.hash),
        ]
        #expect(Set(keys).count == 1)
        #expect(keys.allSatisfy { $0.hashValue == keys[0].hashValue })
        #expect(Set(keys + [RateLimitKey(partnerID: "b", ecHash: edgeCookie.hashKey)]).count == 2)
    }

    @Test("A key whose EC hash is changed hashes as a key made with the new one")
    func changedKey() {
        var key = RateLimitKey(partnerID: "a", ecHash: Self.ecHash)
        let other = String(repeating: "cd", count: 32)
        key.ecHash = other[...]
        let made = RateLimitKey(partnerID: "a", ecHash: other)
        #expect(key == made)
        #expect(key.hashValue == made.hashValue)
        #expect(Set([key, made, RateLimitKey(partnerID: "a", ecHash: Self.ecHash)]).count == 2)
    }
}
