import Foundation
import HTTPTypes
import Hummingbird
import Prometheus
import PullSync
import PullSyncHummingbird

/// The admin API under `/_pullsync/`: health, EC lookup and withdrawal, EIDs, the opt-out
/// outbox's depth, partner reload and Prometheus metrics (bearer token from `PULLSYNC_ADMIN_TOKEN`; without one, 404 to everything
/// but health). Health answers anyone with the status alone (`ok` or `degraded`), and with the
/// details (partners, their problems, the dispatcher's counts) only with the token.
struct AdminRoutes: Sendable {
    let token: String?
    let pullSync: PullSyncService
    let metrics: PrometheusCollectorRegistry

    private var dispatcher: PullDispatcher { pullSync.dispatcher }
    private var reloader: PartnerReloader { pullSync.reloader }

    func register(on router: Router<EdgeRequestContext>) {
        let admin = router.group("_pullsync")
        let authorization = AdminTokenMiddleware(token: token)
        admin.get("health") { request, _ in
            // Partner names and secret references are for operators, not for whoever reaches the edge.
            guard authorization.isAuthorized(request) else {
                return try json(["status": pullSync.status.rawValue])
            }
            return try json(health())
        }
        let protected = admin.group().add(middleware: authorization)
        protected.get("ids/:ec_id") { _, context in
            guard let record = try await pullSync.ids(ecID: try context.parameters.require("ec_id")) else {
                return Response(status: .notFound)
            }
            return try json(IDsResponse(record))
        }
        // The OpenRTB EIDs a bid request for the EC may carry under the consent given as query
        // parameters (none given: no consent strings).
        protected.get("eids/:ec_id") { request, context in
            let consent: ConsentStrings
            switch Result(catching: { () throws(QueryError) in try Self.consentStrings(request.uri.queryParameters) }) {
            case .success(let strings): consent = strings
            case .failure(let error): return try json(["error": error.description], status: .badRequest)
            }
            let ecID = try context.parameters.require("ec_id")
            do {
                guard let eids = try await pullSync.eids(ecID: ecID, strings: consent) else {
                    return Response(status: .notFound)
                }
                return try json(["eids": eids])
            } catch {
                return Response(status: .serviceUnavailable)
            }
        }
        // Withdraws the EC's consent: its UIDs are forgotten, calls in flight for it store
        // nothing, and it is never pulled for again.
        protected.delete("ids/:ec_id") { _, context in
            let raw = try context.parameters.require("ec_id")
            do {
                return Response(status: try await pullSync.withdraw(ecID: raw) ? .noContent : .notFound)
            } catch {
                return Response(status: .serviceUnavailable)
            }
        }
        // The opt-outs owed to partners and not delivered yet: the store's outbox, and the
        // withdrawals this node holds while the store refuses them.
        // `pending` is null while the store can't be read.
        protected.get("optouts") { _, _ in
            let pending = await pullSync.pendingOptOuts()
            return try json(OptOutsResponse(pending: pending.outbox, withdrawals_pending: pending.withdrawals))
        }
        // Reloads partners.d/ all or nothing: 200 with the running partners, or 422 with every
        // problem (the running partners stay).
        protected.post("reload") { _, _ in
            let outcome = reloader.reload(trigger: "admin")
            return try json(
                ReloadResponse(
                    result: outcome.succeeded ? "reloaded" : "failed",
                    partners_enabled: outcome.enabled,
                    problems: outcome.problems
                ),
                status: outcome.succeeded ? .ok : .unprocessableContent
            )
        }
        protected.get("metrics") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(
                status: .ok,
                headers: headers,
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.emitToBuffer()))
            )
        }
    }

    /// A query parameter of `GET /_pullsync/eids/{ec_id}` that can't be read.
    struct QueryError: Error, CustomStringConvertible {
        var description: String
    }

    /// The request consent of `GET /_pullsync/eids/{ec_id}`: `tcf`, `gpp`, `gpp_sid`, `us_privacy`, `gpc=1`.
    static func consentStrings(_ query: Parameters) throws(QueryError) -> ConsentStrings {
        var strings = ConsentStrings()
        strings.tcf = query["tcf"].map(String.init)
        strings.gpp = query["gpp"].map(String.init)
        strings.usPrivacy = query["us_privacy"].map(String.init)
        if let sid = query["gpp_sid"] {
            strings.gppSectionIDs = StandardConsentSource.sectionIDs(String(sid))
            guard !strings.gppSectionIDs.isEmpty else {
                throw QueryError(description: "gpp_sid must be GPP section IDs from 1 to 255 separated by commas, like 2,7")
            }
        }
        switch query["gpc"] {
        case nil, "0": break
        case "1": strings.globalPrivacyControl = true
        default: throw QueryError(description: "gpc must be 1 or 0")
        }
        return strings
    }

    struct IDsResponse: Encodable {
        struct Entry: Encodable {
            var uid: String
            var synced_at: Int64
        }
        var ec_id: String
        var partners: [String: Entry]
        var withdrawn: Bool

        init(_ record: ECRecord) {
            ec_id = record.ecID
            withdrawn = record.withdrawn
            partners = record.partners.mapValues { Entry(uid: $0.uid, synced_at: $0.syncedAt.secondsSinceEpoch) }
        }
    }

    struct OptOutsResponse: Encodable {
        var pending: Int?
        var withdrawals_pending: Int

        enum CodingKeys: String, CodingKey {
            case pending, withdrawals_pending
        }

        // `pending` as null, not left out, when the store can't be read.
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(pending, forKey: .pending)
            try container.encode(withdrawals_pending, forKey: .withdrawals_pending)
        }
    }

    struct ReloadResponse: Encodable {
        var result: String
        var partners_enabled: [String]
        var problems: [String]
    }

    struct Health: Encodable {
        struct Disabled: Encodable {
            var id: String
            var reason: String
        }
        var status: String
        var partners_enabled: [String]
        var partners_disabled: [Disabled]
        struct Protection: Encodable {
            var state: String
            var until: Int64?
        }
        struct Reload: Encodable {
            var reloads: Int
            var failures: Int
            var last_attempt: Int64?
            var last_success: Int64?
            var last_succeeded: Bool?
            var last_problems: [String]
        }
        var manifest_problems: Int
        var dispatcher: [String: Int]
        var reload: Reload
        /// Partners whose circuit is not closed or who asked for a pause, by id.
        var partners_protected: [String: Protection]
    }

    func health() -> Health {
        let registry = dispatcher.kernel.registry
        let statistics = dispatcher.statistics
        let reload = reloader.status
        return Health(
            status: pullSync.status.rawValue,
            partners_enabled: registry.enabledIndices.map { registry.partners[$0].id },
            partners_disabled: registry.partners.indices.filter { !registry.isEnabled($0) }.map {
                let partner = registry.partners[$0]
                return Health.Disabled(id: partner.id, reason: partner.disabledReason ?? "disabled in its manifest")
            },
            manifest_problems: reload.runningProblems,
            dispatcher: [
                "enqueued": statistics.enqueued, "dropped": statistics.dropped, "processed": statistics.processed,
                "calls": statistics.calls, "stored": statistics.stored,
                "withdrawn": statistics.withdrawals["withdrawn", default: 0],
            ],
            reload: Health.Reload(
                reloads: reload.reloads,
                failures: reload.failures,
                last_attempt: reload.lastAttempt,
                last_success: reload.lastSuccess,
                last_succeeded: reload.lastSucceeded,
                last_problems: reload.lastProblems
            ),
            partners_protected: Dictionary(
                uniqueKeysWithValues: dispatcher.kernel.protectionStates().compactMap { entry in
                    switch entry.state {
                    case .closed: nil
                    case .open(let until):
                        (entry.partnerID, Health.Protection(state: "circuit_open", until: until.secondsSinceEpoch))
                    case .halfOpen: (entry.partnerID, Health.Protection(state: "half_open"))
                    case .paused(let until):
                        (entry.partnerID, Health.Protection(state: "paused", until: until.secondsSinceEpoch))
                    }
                }
            )
        )
    }
}

/// Refuses admin requests without the right bearer token; with no token configured, the
/// admin API doesn't exist (404).
struct AdminTokenMiddleware: RouterMiddleware {
    typealias Context = EdgeRequestContext
    let token: String?

    func handle(
        _ request: Request,
        context: EdgeRequestContext,
        next: (Request, EdgeRequestContext) async throws -> Response
    ) async throws -> Response {
        guard token != nil else { return Response(status: .notFound) }
        guard isAuthorized(request) else {
            var headers = HTTPFields()
            headers[.wwwAuthenticate] = "Bearer"
            return Response(status: .unauthorized, headers: headers)
        }
        return try await next(request, context)
    }

    /// Whether `request` carries the admin token (never, when none is configured).
    func isAuthorized(_ request: Request) -> Bool {
        // The scheme is case-insensitive (RFC 9110); the token is compared in constant time.
        guard let token, let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") else {
            return false
        }
        return constantTimeEquals(Array(header.utf8.dropFirst(7)), Array(token.utf8))
    }

    // Compares without an early exit, so timing doesn't reveal how much of the token matched.
    private func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        var difference = UInt8(lhs.count == rhs.count ? 0 : 1)
        for index in 0..<max(lhs.count, rhs.count) {
            difference |= (index < lhs.count ? lhs[index] : 0) ^ (index < rhs.count ? rhs[index] : 0)
        }
        return difference == 0
    }
}

/// A JSON response.
func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    var headers = HTTPFields()
    headers[.contentType] = "application/json"
    return Response(
        status: status,
        headers: headers,
        body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value)))
    )
}
