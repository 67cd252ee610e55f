extension PullKernel {
    /// The OpenRTB 2.6 EIDs (`user.eids`) a bid request for `edgeCookie` may carry under one
    /// request's consent: what the identity graph holds for the EC, filtered by the rules that
    /// decide whether a partner may be called.
    ///
    /// A partner's UID is included when the partner is enabled, its consent holds for this request
    /// (the host's decision and per-partner policy, GPC, US opt-outs, the TC string's vendor and
    /// purpose 1 consent and restrictions, GPP skip sections), the EC is not withdrawn, and the UID
    /// is not past the expiry its partner gave nor older than
    /// ``PullSyncConfiguration/maxUIDAge``. A UID past its partner's TTL is still included: it is
    /// due for a refresh, not wrong. Each appears as the partner's ``Partner/eid`` mapping says;
    /// ``EID/make(_:inserter:)`` orders them.
    ///
    /// One store read at most. None when the fresh-EC memo holds for the EC under the same
    /// consent (a returning browser whose UIDs are all fresh; the memo keeps UIDs from the first
    /// call of this method on), and none when the request's consent refuses every partner.
    ///
    /// - Returns: the EIDs, empty when none qualifies; `nil` when the store doesn't know the EC
    ///   (read only when consent allows some partner: otherwise `[]`).
    /// - Throws: the store's error.
    public func eids(
        for edgeCookie: EdgeCookie,
        consent host: ConsentDecision = .granted,
        strings: ConsentStrings = ConsentStrings()
    ) async throws -> [EID]? {
        switch try await lookUpEIDs(for: edgeCookie, consent: host, strings: strings) {
        case .eids(let eids): eids
        case .refused: []
        case .unknownEC: nil
        }
    }

    /// What ``eids(for:consent:strings:)`` found.
    package enum EIDLookup: Sendable, Hashable {
        case eids([EID])
        /// The request's consent refuses every partner; the store was not read.
        case refused
        /// The store doesn't know the EC.
        case unknownEC
    }

    /// ``eids(for:consent:strings:)``, telling a refusal by consent (nothing read) apart.
    package func lookUpEIDs(
        for edgeCookie: EdgeCookie,
        consent host: ConsentDecision,
        strings: ConsentStrings
    ) async throws -> EIDLookup {
        freshMemo.startKeepingUIDs()
        let now = clock.now()
        let key = ECKey(edgeCookie)
        let hash = FreshECMemo.consent(host, strings)
        if let hash, let kept = freshMemo.uids(key, consent: hash, at: now) {
            metrics.eidsFromMemo.increment()
            return .eids(makeEIDs(kept.lazy.map { (self.partners[$0.partner].definition, $0.uid) }, at: now))
        }
        let rules = consent.requestDenial(strings, host: host) == nil ? consent.partnerRules(for: strings) : nil
        guard let rules, rules.requestDenial == nil else {
            metrics.eidsRefused.increment()
            return .refused
        }
        metrics.eidsFromStore.increment()
        metrics.roundTrip(.lookup)
        guard let record = try await graph.record(ecHash: edgeCookie.hashString) else { return .unknownEC }
        if record.withdrawn { return .eids([]) }
        var allowed: [FreshECMemo.KeptUID] = []
        for running in enabled {
            let partner = running.definition
            let requirements = partner.policy.consent
            guard rules.denial(for: requirements) == nil, host.policyDenial(of: requirements) == nil,
                let uid = record.partners[partner.sourceDomain]
            else { continue }
            allowed.append(FreshECMemo.KeptUID(partner: running.ordinal, uid: uid))
        }
        // A memo entry made before EIDs were asked for holds for these signals: while it holds,
        // every UID consent allows is fresh, so it can answer the next time.
        if let hash { freshMemo.keep(allowed, for: key, consent: hash, at: now) }
        return .eids(makeEIDs(allowed.lazy.map { (self.partners[$0.partner].definition, $0.uid) }, at: now))
    }

    /// The EIDs for a page being served: a store failure gives none (logged, throttled), never
    /// an error for the page.
    package func eidsForPage(
        for edgeCookie: EdgeCookie,
        consent host: ConsentDecision,
        strings: ConsentStrings
    ) async -> [EID] {
        do {
            return try await eids(for: edgeCookie, consent: host, strings: strings) ?? []
        } catch {
            storeWarnings.lookup.warning(
                "identity graph lookup failed; no EIDs for this page",
                metadata: ["error": "\(error)"],
                to: logger
            )
            return []
        }
    }

    private func makeEIDs(_ uids: some Sequence<(Partner, PartnerUID)>, at now: Timestamp) -> [EID] {
        let maxAge = configuration.maxUIDAge
        let offered = uids.lazy.filter { _, uid in
            if let expiresAt = uid.expiresAt, now >= expiresAt { return false }
            return now - uid.syncedAt <= maxAge
        }
        return EID.make(offered.map { partner, uid in (partner.eid, uid.uid) }, inserter: configuration.eidInserter)
    }
}
