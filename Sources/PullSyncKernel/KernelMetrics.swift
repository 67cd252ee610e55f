package import CoreMetrics

/// The kernel's metrics that are not per partner (those are ``PartnerMetrics``), created once so
/// that the hot path only increments.
///
/// - `pullsync_submissions_total{result}`: what became of each organic request handed to the
///   dispatcher: `enqueued`, `dropped` (queue full), `not_running`, `skipped`.
/// - `pullsync_request_skips_total{reason}`: requests skipped as a whole, by reason (`route`,
///   `invalid_ec`, `fresh_memo`, `consent`, `us_opt_out`, `malformed_consent`, `unknown_ec`,
///   `store_unavailable`).
/// - `pullsync_decisions_total{partner, decision}`: `dispatch` or a skip reason, per partner.
/// - `pullsync_outcomes_total{partner, outcome}`: the classified outcome of each call.
/// - `pullsync_writes_total{partner, result}`: `stored`, `conflict`, `withdrawn`, `unknown_ec`, `error`.
/// - `pullsync_call_duration_seconds{partner}`: call latency.
/// - `pullsync_inflight_calls`: calls in flight.
/// - `pullsync_partner_pauses_total{partner}`: pauses a partner asked for (`429`/`503` with
///   `Retry-After`); while one lasts, its decisions are `partner_paused`.
/// - `pullsync_revocations_total{partner}`: UIDs forgotten because a request's consent refused
///   their partner (a TCF vendor or purpose 1 refusal, a publisher restriction, a GPP skip
///   section, the host's per-partner policy).
/// - `pullsync_withdrawals_total{result}`: consent withdrawals (a denied request with a known
///   EC, or the admin API): `withdrawn`, `already_withdrawn`, `unknown_ec`, `dropped` (queue
///   full), `error` (the store failed).
/// - `pullsync_store_round_trips_total{operation}`: the kernel's calls to the identity graph and
///   the rate limiter, by ``StoreOperation``: what a page view costs the store.
/// - `pullsync_eids_total{source}`: EID lookups, by where the answer came from: `memo` (this
///   node's memory, no store read), `store` (one read), `consent` (the request's consent refuses
///   every partner: nothing read).
package struct KernelMetrics: Sendable {
    /// `pullsync_submissions_total`, a handle per result: incremented on every page view, with
    /// nothing looked up.
    private let enqueued: Counter, dropped: Counter, notRunning: Counter, skipped: Counter
    let withdrawals: [String: Counter]
    let requestSkips: CaseTable<SkipReason, Counter>
    let inFlight: Meter
    let factory: any MetricsFactory
    private let roundTrips: CaseTable<StoreOperation, Counter>
    let eidsFromMemo: Counter, eidsFromStore: Counter, eidsRefused: Counter

    static let withdrawalResults = ["withdrawn", "already_withdrawn", "unknown_ec", "dropped", "error"]

    /// Creates the metrics that are not per partner on `factory`.
    package init(factory: any MetricsFactory) {
        self.factory = factory
        func submissions(_ result: String) -> Counter {
            Counter(label: "pullsync_submissions_total", dimensions: [("result", result)], factory: factory)
        }
        enqueued = submissions("enqueued")
        dropped = submissions("dropped")
        notRunning = submissions("not_running")
        skipped = submissions("skipped")
        withdrawals = Dictionary(
            uniqueKeysWithValues: Self.withdrawalResults.map {
                ($0, Counter(label: "pullsync_withdrawals_total", dimensions: [("result", $0)], factory: factory))
            }
        )
        requestSkips = CaseTable {
            Counter(label: "pullsync_request_skips_total", dimensions: [("reason", $0.rawValue)], factory: factory)
        }
        inFlight = Meter(label: "pullsync_inflight_calls", factory: factory)
        roundTrips = CaseTable {
            Counter(label: "pullsync_store_round_trips_total", dimensions: [("operation", $0.rawValue)], factory: factory)
        }
        func eids(_ source: String) -> Counter {
            Counter(label: "pullsync_eids_total", dimensions: [("source", source)], factory: factory)
        }
        eidsFromMemo = eids("memo")
        eidsFromStore = eids("store")
        eidsRefused = eids("consent")
    }

    /// Counts one call to the store.
    func roundTrip(_ operation: StoreOperation) {
        roundTrips[operation].increment()
    }

    func submission(_ result: SubmitResult) {
        switch result {
        case .enqueued: enqueued.increment()
        case .dropped: dropped.increment()
        case .notRunning: notRunning.increment()
        case .skipped: skipped.increment()
        }
    }

    func withdrawal(_ result: String) {
        withdrawals[result]?.increment()
    }

    func requestSkip(_ reason: SkipReason) {
        requestSkips[reason].increment()
    }
}

/// A kind of call the kernel makes to its store, as `pullsync_store_round_trips_total` counts it.
package enum StoreOperation: String, Sendable, CaseIterable {
    /// An EC's record read (a decision, an EID lookup, a withdrawal's check).
    case lookup
    /// An issued EC's root entry created.
    case createRoot = "create_root"
    /// An issued EC's root entry created and its first calls counted, in one round trip.
    case createRootAdmit = "create_root_admit"
    /// A known EC's record read and its due partners' first calls counted, in one round trip.
    case lookupAdmit = "lookup_admit"
    /// A batch of calls counted in the rate limiter (with their leases, in a shared store).
    case admit
    /// Calls counted with a record that the kernel then refused locally, taken back.
    case uncount
    /// A shared budget's token taken before a call is sent.
    case budget
    /// A batch of UID writes.
    case write
    /// A request's call leases given back.
    case release
    /// An EC withdrawn.
    case withdraw
    /// Partners revoked for an EC.
    case revoke
    /// An EC recorded as seen (at most once a day per EC).
    case seen
}

/// One partner's metric handles, created when its registry loads so that the hot path only
/// increments.
struct PartnerMetrics: Sendable {
    private let dispatched: Counter
    private let skips: CaseTable<SkipReason, Counter>
    private let outcomes: CaseTable<OutcomeClass, Counter>
    private let writes: CaseTable<WriteResult, Counter>
    private let writeErrors: Counter
    let duration: Timer
    private let pauses: Counter
    private let revocations: Counter

    init(partnerID id: String, factory: any MetricsFactory) {
        func counter(_ label: String, _ name: String, _ value: String) -> Counter {
            Counter(label: label, dimensions: [("partner", id), (name, value)], factory: factory)
        }
        dispatched = counter("pullsync_decisions_total", "decision", "dispatch")
        skips = CaseTable { counter("pullsync_decisions_total", "decision", $0.rawValue) }
        outcomes = CaseTable { counter("pullsync_outcomes_total", "outcome", $0.rawValue) }
        writes = CaseTable { counter("pullsync_writes_total", "result", $0.rawValue) }
        writeErrors = counter("pullsync_writes_total", "result", "error")
        duration = Timer(
            label: "pullsync_call_duration_seconds",
            dimensions: [("partner", id)],
            preferredDisplayUnit: .seconds,
            factory: factory
        )
        pauses = Counter(label: "pullsync_partner_pauses_total", dimensions: [("partner", id)], factory: factory)
        revocations = Counter(label: "pullsync_revocations_total", dimensions: [("partner", id)], factory: factory)
    }

    /// A UID of this partner's forgotten because a request's consent refused it.
    func revocation() {
        revocations.increment()
    }

    func decision(_ decision: Decision) {
        switch decision {
        case .dispatch: dispatched.increment()
        case .skip(let reason): skips[reason].increment()
        }
    }

    func pause() {
        pauses.increment()
    }

    func outcome(_ outcome: OutcomeClass) {
        outcomes[outcome].increment()
    }

    /// A write's result; `nil` when the store failed.
    func write(_ result: WriteResult?) {
        (result.map { writes[$0] } ?? writeErrors).increment()
    }
}
