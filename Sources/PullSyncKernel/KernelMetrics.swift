public import CoreMetrics

/// The kernel's metrics, created once per registry so that the hot path only increments.
///
/// - `pullsync_submissions_total{result}`: what became of each organic request handed to the
///   dispatcher: `enqueued`, `dropped` (queue full), `not_running`, `skipped`.
/// - `pullsync_request_skips_total{reason}`: requests skipped as a whole, by reason (`route`,
///   `invalid_ec`, `consent`, `us_opt_out`, `malformed_consent`, `unknown_ec`, `store_unavailable`).
/// - `pullsync_decisions_total{partner, decision}`: `dispatch` or a skip reason, per partner.
/// - `pullsync_outcomes_total{partner, outcome}`: the classified outcome of each call.
/// - `pullsync_writes_total{partner, result}`: `stored`, `conflict`, `withdrawn`, `unknown_ec`, `error`.
/// - `pullsync_call_duration_seconds{partner}`: call latency.
/// - `pullsync_inflight_calls`: calls in flight.
/// - `pullsync_partner_pauses_total{partner}`: pauses a partner asked for (`429`/`503` with
///   `Retry-After`); while one lasts, its decisions are `partner_paused`.
/// - `pullsync_withdrawals_total{result}`: consent withdrawals (a denied request with a known
///   EC, or the admin API): `withdrawn`, `already_withdrawn`, `unknown_ec`, `dropped` (queue
///   full), `error` (the store failed).
public struct KernelMetrics: Sendable {
    let submissions: [String: Counter]
    let withdrawals: [String: Counter]
    let requestSkips: [Counter]  // by SkipReason ordinal
    let decisions: [[Counter]]  // [partner][reason index], index 0 = dispatch
    let outcomes: [[Counter]]  // [partner][OutcomeClass index]
    let writes: [[Counter]]  // [partner][WriteResult index], last = error
    let durations: [Timer]
    let inFlight: Meter
    let pauses: [Counter]

    static let submissionResults = ["enqueued", "dropped", "not_running", "skipped"]
    static let withdrawalResults = ["withdrawn", "already_withdrawn", "unknown_ec", "dropped", "error"]
    static let decisionNames = ["dispatch"] + SkipReason.allCases.map(\.rawValue)
    static let writeNames = WriteResult.allCases.map(\.rawValue) + ["error"]

    /// Creates every metric for `partnerIDs` on `factory`.
    public init(partnerIDs: [String], factory: any MetricsFactory) {
        submissions = Dictionary(
            uniqueKeysWithValues: Self.submissionResults.map {
                ($0, Counter(label: "pullsync_submissions_total", dimensions: [("result", $0)], factory: factory))
            }
        )
        withdrawals = Dictionary(
            uniqueKeysWithValues: Self.withdrawalResults.map {
                ($0, Counter(label: "pullsync_withdrawals_total", dimensions: [("result", $0)], factory: factory))
            }
        )
        requestSkips = SkipReason.allCases.map {
            Counter(label: "pullsync_request_skips_total", dimensions: [("reason", $0.rawValue)], factory: factory)
        }
        decisions = partnerIDs.map { id in
            Self.decisionNames.map {
                Counter(
                    label: "pullsync_decisions_total",
                    dimensions: [("partner", id), ("decision", $0)],
                    factory: factory
                )
            }
        }
        outcomes = partnerIDs.map { id in
            OutcomeClass.allCases.map {
                Counter(
                    label: "pullsync_outcomes_total",
                    dimensions: [("partner", id), ("outcome", $0.rawValue)],
                    factory: factory
                )
            }
        }
        writes = partnerIDs.map { id in
            Self.writeNames.map {
                Counter(
                    label: "pullsync_writes_total",
                    dimensions: [("partner", id), ("result", $0)],
                    factory: factory
                )
            }
        }
        durations = partnerIDs.map {
            Timer(
                label: "pullsync_call_duration_seconds",
                dimensions: [("partner", $0)],
                preferredDisplayUnit: .seconds,
                factory: factory
            )
        }
        inFlight = Meter(label: "pullsync_inflight_calls", factory: factory)
        pauses = partnerIDs.map {
            Counter(label: "pullsync_partner_pauses_total", dimensions: [("partner", $0)], factory: factory)
        }
    }

    func submission(_ result: String) {
        submissions[result]?.increment()
    }

    func withdrawal(_ result: String) {
        withdrawals[result]?.increment()
    }

    func requestSkip(_ reason: SkipReason) {
        requestSkips[Int(reason.ordinal)].increment()
    }

    func decision(_ partner: Int, _ decision: Decision) {
        switch decision {
        case .dispatch: decisions[partner][0].increment()
        case .skip(let reason): decisions[partner][Int(reason.ordinal) + 1].increment()
        }
    }

    func pause(_ partner: Int) {
        pauses[partner].increment()
    }

    func outcome(_ partner: Int, _ outcome: OutcomeClass) {
        outcomes[partner][Self.outcomeIndex[outcome]!].increment()
    }

    func write(_ partner: Int, _ result: WriteResult?) {
        writes[partner][result.map { Self.writeIndex[$0]! } ?? Self.writeNames.count - 1].increment()
    }

    private static let outcomeIndex: [OutcomeClass: Int] = Dictionary(
        uniqueKeysWithValues: OutcomeClass.allCases.enumerated().map { ($1, $0) }
    )
    private static let writeIndex: [WriteResult: Int] = Dictionary(
        uniqueKeysWithValues: WriteResult.allCases.enumerated().map { ($1, $0) }
    )
}

extension SkipReason {
    /// The reason's position in `allCases`, without hashing (the hot path's table index).
    var ordinal: UInt8 {
        switch self {
        case .route: 0
        case .invalidEC: 1
        case .unknownEC: 2
        case .consent: 3
        case .tcfConsent: 4
        case .gppSection: 5
        case .usOptOut: 6
        case .malformedConsent: 7
        case .disabled: 8
        case .fresh: 9
        case .rateLimited: 10
        case .circuitOpen: 11
        case .budget: 12
        case .inFlight: 13
        case .partnerBusy: 14
        case .badURL: 15
        case .adapterError: 16
        case .deferred: 17
        case .storeUnavailable: 18
        case .partnerPaused: 19
        }
    }
}
