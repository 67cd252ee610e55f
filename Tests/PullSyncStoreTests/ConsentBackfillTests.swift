import Foundation
import Logging
import PullSync
import PullSyncStorage
import PullSyncTesting
import Testing

/// Issue 19: a backfill calls a partner only for the ECs whose consent snapshot allows it.
/// 10,000 ECs with mixed stored consent, and the calls checked EC by EC against a TC string
/// decoder written here, independently of `IABConsent`.
@Suite("Backfill under consent snapshots")
struct ConsentBackfillTests {
    static let ecCount = 10_000
    static let vendor = 42
    static let maxAge = Duration.seconds(395 * 86_400)

    /// The population's kinds of stored consent.
    enum Kind: CaseIterable {
        /// No snapshot: an EC from before snapshots were kept.
        case none
        /// A TC string that would allow vendor 42, seen 400 days ago.
        case outdated
        /// A TC string (bit field or ranges, purpose 1 or not, vendor 42 or not).
        case tcString
        /// The same inside GPP section 2.
        case gppTCF
        /// US signals only: TCF doesn't apply.
        case usOnly
        /// GPP with a usnat section (section 7 applies, no opt-out).
        case usnat
        /// A TC string that doesn't decode.
        case malformed
        /// Signals larger than a snapshot keeps.
        case oversized
    }

    @Test(
        "A TCF partner and a partner without a vendor ID are each called for exactly the ECs whose snapshot allows them",
        arguments: StoreKind.available
    )
    func exactlyTheAllowedECs(kind: StoreKind) async throws {
        let now = SystemWallClock().now()
        let random = SeededRandomSource(seed: 19)
        let population = (1...Self.ecCount).map { _ in
            Self.snapshot(Kind.allCases[random.next(below: Kind.allCases.count)], now: now, random: random)
        }
        let snapshots = Dictionary(uniqueKeysWithValues: population.enumerated().map { (edgeCookie($0 + 1).value, $1) })
        try await withStore(kind) { opened in
            // Eight at a time: one by one, PostgreSQL's 10,000 round trips took 20 s of this test.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for lane in 0..<8 {
                    group.addTask {
                        for index in stride(from: lane, to: population.count, by: 8) {
                            _ = try await opened.store.createRoot(
                                for: edgeCookie(index + 1),
                                at: now - .seconds(1),
                                consent: population[index]
                            )
                        }
                    }
                }
                try await group.waitForAll()
            }
            let partners = [
                TestPartners.partner(
                    "v42",
                    consent: PartnerConsentRequirements(tcfVendorID: Self.vendor, gppSkipSections: [7])
                ),
                TestPartners.partner("plain"),
            ]
            let registry = try PartnerRegistry(partners)
            for partner in partners {
                let expected = Set(
                    snapshots.filter { Oracle.allows($0.value, partner: partner, now: now) }.keys
                )
                let transport = ScriptedTransport(fallback: .uid("u"))
                let backfill = try Backfill(
                    partnerID: partner.id,
                    registry: registry,
                    store: opened.store,
                    transport: transport,
                    options: BackfillOptions(rate: 1_000_000, concurrency: 32, pageSize: 1_000)
                )
                let dry = try await backfill.dryRun(sample: 0)
                #expect(dry.candidates == Self.ecCount)
                #expect(dry.candidates - dry.excluded.values.reduce(0, +) == expected.count)

                let summary = try await backfill.run()
                #expect(summary.ending == .complete)
                let called = transport.requests.compactMap { request in
                    request.query.first { $0.name == "ec_id" }?.value
                }
                #expect(called.count == Set(called).count, "each EC called once")
                let calledSet = Set(called)
                #expect(calledSet.subtracting(expected).count == 0, "called though refused")
                #expect(expected.subtracting(calledSet).count == 0, "allowed but not called")
                #expect(summary.progress.outcomes["uid"] == expected.count)
                #expect(summary.progress.outcomes.values.reduce(0, +) == Self.ecCount)
                // The rules that can't be mistaken for another are counted under their own names.
                if partner.id == "v42" {
                    let unknown = snapshots.values.filter { $0?.strings == nil }.count
                    let outdated = snapshots.values.filter { $0.map { now - $0.seenAt > Self.maxAge } == true }.count
                    #expect(dry.excluded[Backfill.noSnapshot] == unknown)
                    #expect(dry.excluded[Backfill.outdated] == outdated)
                    #expect(summary.progress.outcomes[Backfill.noSnapshot] == unknown)
                }
                if partner.id == "plain" {
                    let oversized = snapshots.values.filter { $0.map { $0.strings == nil } == true }.count
                    #expect(dry.excluded[Backfill.noSnapshot] == oversized, "only the snapshots too large to keep")
                }
                // A share of both kinds, or the test proves little.
                #expect(expected.count > Self.ecCount / 10)
                #expect(expected.count < Self.ecCount * 9 / 10)
            }
            // Backfill's calls neither marked ECs seen nor replaced a snapshot.
            let record = try await opened.store.record(ecHash: ecHash(1))
            #expect(record?.seenAt == now - .seconds(1))
            #expect(record?.consentDigest == snapshots[edgeCookie(1).value]??.digest)
        }
    }

    static func snapshot(_ kind: Kind, now: Timestamp, random: SeededRandomSource) -> ConsentSnapshot? {
        func tc() -> String {
            var vendors = Set((0..<random.next(below: 12)).map { _ in 1 + random.next(below: 80) })
            if random.next(below: 2) == 0 { vendors.insert(Self.vendor) }
            return TCEncoder.encode(
                purposes: random.next(below: 5) == 0 ? [2, 3] : [1, 2, 3],
                vendors: vendors,
                ranges: random.next(below: 2) == 0
            )
        }
        let seen = now - .seconds(Int64(random.next(below: 86_400 * 30)))
        switch kind {
        case .none:
            return nil
        case .outdated:
            let strings = ConsentStrings(tcf: TCEncoder.encode(purposes: [1], vendors: [Self.vendor], ranges: false))
            return ConsentSnapshot(strings, seenAt: now - .seconds(400 * 86_400))
        case .tcString:
            return ConsentSnapshot(ConsentStrings(tcf: tc()), seenAt: seen)
        case .gppTCF:
            return ConsentSnapshot(ConsentStrings(gpp: "DBABMA~" + tc(), gppSectionIDs: [2]), seenAt: seen)
        case .usOnly:
            return ConsentSnapshot(ConsentStrings(usPrivacy: "1YNN"), seenAt: seen)
        case .usnat:
            return ConsentSnapshot(ConsentStrings(gpp: "DBABzw~1YNN~BVQqAAAACg"), seenAt: seen)
        case .malformed:
            // A character outside base64url: no decoder can read it.
            return ConsentSnapshot(ConsentStrings(tcf: String(tc().dropLast(3)) + "*"), seenAt: seen)
        case .oversized:
            return ConsentSnapshot(ConsentStrings(gpp: String(repeating: "A", count: 9_000)), seenAt: seen)
        }
    }

    /// The rules, decided from the stored signals with the decoder below.
    enum Oracle {
        static func allows(_ snapshot: ConsentSnapshot?, partner: Partner, now: Timestamp) -> Bool {
            let vendor = partner.policy.consent.tcfVendorID
            guard let snapshot else { return vendor == nil }
            guard let strings = snapshot.strings else { return false }  // seen, too large to keep: unknown
            if vendor != nil, now - snapshot.seenAt > maxAge { return false }
            // GPP as this population writes it: section 2 alone, or sections 6 and 7.
            var sections: [Int] = strings.gppSectionIDs
            var tcf = strings.tcf
            if let gpp = strings.gpp {
                let parts = gpp.split(separator: "~").map(String.init)
                if parts.first == "DBABMA" {
                    if sections.isEmpty { sections = [2] }
                    if sections.contains(2) { tcf = parts[1] }
                } else if parts.first == "DBABzw" {
                    if sections.isEmpty { sections = [6, 7] }
                } else {
                    return false
                }
            }
            if let tcf {
                guard let decoded = TCDecoder.decode(tcf) else { return false }
                guard let vendor, decoded.purposes.contains(1), decoded.vendors.contains(vendor) else { return false }
            }
            return sections.allSatisfy { !partner.policy.consent.gppSkipSections.contains($0) }
        }
    }
}

/// Writes TCF v2 core segments (no publisher restrictions), bit by bit per the TCF v2 spec.
enum TCEncoder {
    static func encode(purposes: Set<Int>, vendors: Set<Int>, ranges: Bool) -> String {
        var bits: [Bool] = []
        func put(_ value: Int, _ width: Int) {
            for shift in stride(from: width - 1, through: 0, by: -1) { bits.append((value >> shift) & 1 == 1) }
        }
        put(2, 6)  // version
        put(16_000_000_000, 36)  // created (deciseconds)
        put(16_000_000_000, 36)  // last updated
        put(7, 12)  // CMP ID
        put(1, 12)  // CMP version
        put(1, 6)  // consent screen
        put(4, 6)
        put(13, 6)  // language "EN"
        put(100, 12)  // vendor list version
        put(2, 6)  // policy version
        put(1, 1)  // service-specific
        put(0, 1)  // non-standard texts
        put(0, 12)  // special features
        for purpose in 1...24 { put(purposes.contains(purpose) ? 1 : 0, 1) }
        put(0, 24)  // purposes LI
        put(0, 1)  // purpose one treatment
        put(4, 6)
        put(4, 6)  // publisher CC "EE"
        let maxVendor = vendors.max() ?? 0
        put(maxVendor, 16)
        if ranges {
            put(1, 1)
            let sorted = vendors.sorted()
            put(sorted.count, 12)
            for vendor in sorted {
                put(0, 1)  // a single ID
                put(vendor, 16)
            }
        } else {
            put(0, 1)
            if maxVendor > 0 { for vendor in 1...maxVendor { put(vendors.contains(vendor) ? 1 : 0, 1) } }
        }
        put(0, 16)  // vendor LI: max vendor 0
        put(0, 1)  // bit field (empty)
        put(0, 12)  // no publisher restrictions
        while bits.count % 8 != 0 { bits.append(false) }
        var bytes: [UInt8] = []
        for start in stride(from: 0, to: bits.count, by: 8) {
            bytes.append(bits[start..<start + 8].reduce(0) { $0 << 1 | ($1 ? 1 : 0) })
        }
        return Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

/// Reads what the rules need from a TC string's core segment: purpose consents, vendor consents
/// (bit field or ranges) and the count of publisher restrictions; `nil` when it doesn't parse or
/// has restrictions (which this population never writes).
enum TCDecoder {
    struct Decoded {
        var purposes: Set<Int>
        var vendors: Set<Int>
    }

    static func decode(_ text: String) -> Decoded? {
        let core = text.split(separator: ".", omittingEmptySubsequences: false).first.map(String.init) ?? ""
        var base64 = core.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64) else { return nil }
        let bits: [Bool] = data.flatMap { byte -> [Bool] in (0..<8).map { (byte >> (7 - $0)) & 1 == 1 } }
        var position = 0
        func read(_ width: Int) -> Int? {
            guard position + width <= bits.count else { return nil }
            defer { position += width }
            return bits[position..<position + width].reduce(0) { $0 << 1 | ($1 ? 1 : 0) }
        }
        func vendorSection() -> Set<Int>? {
            guard let max = read(16), let isRange = read(1) else { return nil }
            var vendors: Set<Int> = []
            if isRange == 1 {
                guard let entries = read(12) else { return nil }
                for _ in 0..<entries {
                    guard let isGroup = read(1), let start = read(16) else { return nil }
                    let end = isGroup == 1 ? read(16) : start
                    guard let end, start <= end else { return nil }
                    vendors.formUnion(start...end)
                }
            } else {
                for vendor in stride(from: 1, through: max, by: 1) {
                    guard let bit = read(1) else { return nil }
                    if bit == 1 { vendors.insert(vendor) }
                }
            }
            return vendors
        }
        guard read(6) == 2 else { return nil }
        position = 152
        var purposes: Set<Int> = []
        for purpose in 1...24 {
            guard let bit = read(1) else { return nil }
            if bit == 1 { purposes.insert(purpose) }
        }
        position = 213
        guard let vendors = vendorSection(), vendorSection() != nil, read(12) == 0 else { return nil }
        return Decoded(purposes: purposes, vendors: vendors)
    }
}
