extension PullKernel {
    /// Sends one opt-out to its partner, within the partner's circuit, pause and budget (as a
    /// pull would be), and judges the answer by its status (``OptOutAttempt``). The partner is
    /// found by source domain among all partners, enabled or not: a user's opt-out is owed even
    /// to a partner no longer pulled from.
    package func sendOptOut(_ task: OptOutTask) async -> OptOutAttempt {
        guard let running = partners.first(where: { $0.definition.sourceDomain == task.sourceDomain }),
            let endpoint = running.definition.optOut
        else {
            // Not abandoned: this node's manifests may be behind (a rolling deploy) or broken for
            // a while; another node, or a reload, may know the endpoint. It expires in time.
            return .retry(reason: "no_endpoint: no partner with an opt-out endpoint keeps UIDs under \(task.sourceDomain)", after: nil)
        }
        let partner = running.definition
        let now = clock.now()
        let request: PullRequest
        do {
            request = try endpoint.makeRequest(for: partner.context(EdgeCookie(unchecked: task.ecID), at: now))
        } catch {
            // A secret not resolved yet may be by a reload: tried again, within the task's time.
            return .retry(reason: "adapter_error: \(error.message)", after: nil)
        }
        guard isAllowed(request.url, for: partner) else {
            return .failed(reason: "bad_url: \(request.url.host) is not allowed for the partner")
        }
        let probe: Bool
        switch running.protection.admission(at: now) {
        case .admitted(let isProbe): probe = isProbe
        case .refused(let reason): return .retry(reason: reason.rawValue, after: nil)
        }
        guard await mayStartSending(running) else {
            running.protection.refund(probe: probe)
            return .retry(reason: SkipReason.budget.rawValue, after: nil)
        }
        let limits = TransportLimits(timeout: partner.policy.timeout, maxBodyBytes: configuration.maxBodyBytes)
        let result = await transport.send(request, limits: limits)
        let answered = clock.now()
        switch result {
        case .failure(let failure):
            let outcome = PullOutcome(failure)
            if Task.isCancelled {
                running.protection.refund(probe: probe)
            } else if let change = running.protection.record(failed: outcome.isPartnerFailure, probe: probe, at: answered) {
                log(change, partner: partner)
            }
            return .retry(reason: outcome.outcomeClass.rawValue, after: nil)
        case .response(let status, let headers, _):
            let retryAfter = status == 429 || status == 503 ? RetryAfter.delay(in: headers, now: answered) : nil
            var failed = false
            if let retryAfter, retryAfter > .zero {
                _ = running.protection.pause(for: retryAfter, probe: probe, at: answered)
                running.metrics.pause()
                return .retry(reason: "http_\(status)", after: retryAfter)
            }
            let attempt = OptOutAttempt.answer(status)
            if case .retry = attempt { failed = true }
            if let change = running.protection.record(failed: failed, probe: probe, at: answered) {
                log(change, partner: partner)
            }
            return attempt
        }
    }

    /// Sends `partnerID`'s opt-out request for `edgeCookie` once, outside the outbox and the
    /// partner's circuit and budget (URL safety still applies), and returns the request, the
    /// status and what the outbox would make of it: what `pullsync try --optout` does. `nil`
    /// when no partner has that id or it has no opt-out endpoint.
    package func probeOptOut(partnerID: String, edgeCookie: EdgeCookie) async throws(AdapterError)
        -> (request: PullRequest, status: Int?, attempt: OptOutAttempt)?
    {
        guard let running = partner(partnerID), let endpoint = running.definition.optOut else { return nil }
        let partner = running.definition
        let request = try endpoint.makeRequest(for: partner.context(edgeCookie, at: clock.now()))
        guard isAllowed(request.url, for: partner) else {
            return (request, nil, .failed(reason: "bad_url: \(request.url.host) is not allowed for the partner"))
        }
        let limits = TransportLimits(timeout: partner.policy.timeout, maxBodyBytes: configuration.maxBodyBytes)
        switch await transport.send(request, limits: limits) {
        case .failure(let failure):
            return (request, nil, .retry(reason: PullOutcome(failure).outcomeClass.rawValue, after: nil))
        case .response(let status, _, _):
            return (request, status, .answer(status))
        }
    }
}

extension Partner {
    /// The context of a request to this partner for `edgeCookie` at `now`, outside an organic
    /// request (no client IP).
    func context(_ edgeCookie: EdgeCookie, at now: Timestamp, consentStrings: ConsentStrings = ConsentStrings())
        -> PullContext
    {
        PullContext(
            edgeCookie: edgeCookie,
            partnerID: id,
            sourceDomain: sourceDomain,
            now: now,
            consentStrings: consentStrings
        )
    }
}
