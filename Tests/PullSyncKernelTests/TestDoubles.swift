import PullSyncKernel
import PullSyncStorage
import PullSyncTesting
import Synchronization

/// An error a failing store throws.
struct StoreDown: Error, CustomStringConvertible {
    var description: String { "store is down" }
}

/// An identity graph whose every operation throws.
struct FailingIdentityGraph: IdentityGraph {
    func record(ecHash: String) async throws -> ECRecord? { throw StoreDown() }
    func createRoot(for edgeCookie: EdgeCookie, at now: Timestamp, consent: ConsentSnapshot?) async throws -> ECRecord { throw StoreDown() }
    func write(_ writes: [UIDWrite], ecHash: String) async throws -> [WriteResult] { throw StoreDown() }
    func withdraw(ecHash: String, at now: Timestamp, notifying: [String]) async throws -> Bool { throw StoreDown() }
    func revoke(_ sourceDomains: [String], ecHash: String, at now: Timestamp, notifying: [String]) async throws -> [String] {
        throw StoreDown()
    }
    func markSeen(ecHash: String, at now: Timestamp, consent: ConsentSnapshot?) async throws { throw StoreDown() }
}

/// A rate limiter whose every operation throws.
struct FailingRateLimiter: RateLimiter {
    func acquire(_ requests: [RateLimitRequest], at now: Timestamp) async throws -> [Bool] { throw StoreDown() }
    func count(key: RateLimitKey, window: Duration, at now: Timestamp) async throws -> Int { throw StoreDown() }
}

/// A graph that reads from an in-memory graph but whose writes throw.
struct WriteFailingIdentityGraph: IdentityGraph {
    let base: InMemoryIdentityGraph
    func record(ecHash: String) async throws -> ECRecord? { try await base.record(ecHash: ecHash) }
    func createRoot(for edgeCookie: EdgeCookie, at now: Timestamp, consent: ConsentSnapshot?) async throws -> ECRecord {
        try await base.createRoot(for: edgeCookie, at: now, consent: consent)
    }
    func write(_ writes: [UIDWrite], ecHash: String) async throws -> [WriteResult] { throw StoreDown() }
    func withdraw(ecHash: String, at now: Timestamp, notifying: [String]) async throws -> Bool {
        try await base.withdraw(ecHash: ecHash, at: now, notifying: notifying)
    }
    func revoke(_ sourceDomains: [String], ecHash: String, at now: Timestamp, notifying: [String]) async throws -> [String] {
        try await base.revoke(sourceDomains, ecHash: ecHash, at: now, notifying: notifying)
    }
    func markSeen(ecHash: String, at now: Timestamp, consent: ConsentSnapshot?) async throws {
        try await base.markSeen(ecHash: ecHash, at: now, consent: consent)
    }
}

/// A transport that runs `hook` when a request is sent (after eligibility was decided,
/// before the answer), then answers through a scripted transport.
struct HookTransport: PullTransport {
    let base: ScriptedTransport
    let hook: @Sendable (PullRequest) async -> Void

    func send(_ request: PullRequest, limits: TransportLimits) async -> TransportResult {
        await hook(request)
        return await base.send(request, limits: limits)
    }
}

/// A per-partner consent policy that denies one TCF vendor.
struct DenyVendor: PartnerConsentPolicy {
    let vendorID: Int
    func allows(_ requirements: PartnerConsentRequirements) -> Bool {
        requirements.tcfVendorID != vendorID
    }
}

/// A compiled adapter that answers with a fixed outcome (for example a UID with an expiry).
struct FixedOutcomeAdapter: PartnerAdapter {
    let host: String
    let outcome: PullOutcome

    func makeRequest(for context: PullContext) throws(AdapterError) -> PullRequest {
        PullRequest(
            url: PartnerURL(scheme: "https", host: host, path: "/ids"),
            query: [("ec", context.edgeCookie.value)]
        )
    }

    func classify(_ result: TransportResult, context: PullContext) -> PullOutcome { outcome }
}

/// An EC format for another scheme: `ec-` followed by 8 or more alphanumerics (no hash suffix).
struct PrefixedEdgeCookieFormat: EdgeCookieFormat {
    func parse(_ raw: some StringProtocol) -> EdgeCookie? {
        let value = String(raw)
        guard value.hasPrefix("ec-"), value.count >= 11,
            value.dropFirst(3).allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) })
        else { return nil }
        return EdgeCookie(unchecked: value)
    }
}

/// A value shared between a test and the tasks or hooks it starts.
final class Box<Value: Sendable>: Sendable {
    private let storage: Mutex<Value>

    init(_ value: Value) {
        self.storage = Mutex(value)
    }

    var value: Value {
        get { storage.withLock { $0 } }
        set { storage.withLock { $0 = newValue } }
    }

    func update(_ change: (inout Value) -> Void) {
        storage.withLock { change(&$0) }
    }
}
