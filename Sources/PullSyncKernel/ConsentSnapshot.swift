/// The consent signals last seen with an EC, as the store keeps them for work done without the
/// browser: `pullsync backfill` calls a partner only for ECs whose latest snapshot allows it.
///
/// The kernel saves one when an EC is created and whenever a request brings other signals than
/// the stored ones (it compares ``digest`` with ``ECRecord/consentDigest``), never per page view.
/// Signals that refuse every partner are not saved: a GPC or US opt-out withdraws the EC, and a
/// string that doesn't decode leaves the last readable snapshot in place.
public struct ConsentSnapshot: Sendable, Hashable {
    /// The most bytes of signals kept per EC. Larger signals are recorded (their ``digest`` and
    /// time) but not kept: ``strings`` is `nil`, which a backfill treats as unknown consent.
    public static let maxBytes = 8_192

    /// The signals, without GPC (a request with it withdraws the EC); `nil` when they were
    /// larger than ``maxBytes``.
    public var strings: ConsentStrings?
    /// When a request first brought them.
    public var seenAt: Timestamp
    /// A fingerprint of the signals, the same on every node and across restarts.
    public var digest: Int64

    /// The snapshot of `strings` seen at `seenAt`.
    public init(_ strings: ConsentStrings, seenAt: Timestamp) {
        var kept = strings
        kept.globalPrivacyControl = false
        let size = [kept.tcf, kept.gpp, kept.usPrivacy].reduce(kept.gppSectionIDs.count * 4) { $0 + ($1?.utf8.count ?? 0) }
        self.strings = size <= Self.maxBytes ? kept : nil
        self.seenAt = seenAt
        self.digest = Self.digest(of: kept)
    }

    /// A snapshot as a store reads it back.
    public init(strings: ConsentStrings?, seenAt: Timestamp, digest: Int64) {
        self.strings = strings
        self.seenAt = seenAt
        self.digest = digest
    }

    /// The fingerprint of `strings` (GPC left out): 64-bit FNV-1a over each signal, each one
    /// preceded by whether it is present and its length, so no two sets of signals run together.
    public static func digest(of strings: ConsentStrings) -> Int64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ byte: UInt8) {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        func mix(_ value: Int) {
            for shift in stride(from: 0, to: 64, by: 8) { mix(UInt8(truncatingIfNeeded: value >> shift)) }
        }
        for text in [strings.tcf, strings.gpp, strings.usPrivacy] {
            guard let text else {
                mix(-1)
                continue
            }
            mix(text.utf8.count)
            for byte in text.utf8 { mix(byte) }
        }
        mix(strings.gppSectionIDs.count)
        for section in strings.gppSectionIDs { mix(section) }
        return Int64(bitPattern: hash)
    }

    /// `gppSectionIDs` as stores keep them: decimal IDs joined by `,`.
    public static func encodeSections(_ sections: [Int]) -> String {
        sections.map(String.init).joined(separator: ",")
    }

    /// Reads what ``encodeSections(_:)`` wrote; IDs that don't parse are dropped.
    public static func decodeSections(_ text: String) -> [Int] {
        text.split(separator: ",").compactMap { Int($0) }
    }
}
