public import PullSyncKernel

extension PullKernel {
    /// Decides `request` for real, as a ``PullDispatcher`` does (the root entry of an issued EC,
    /// budget tokens, in-flight places, rate-limit counts), then gives back what executing the
    /// calls would have given back, without sending anything. Rate-limit counts stay.
    ///
    /// For benchmarks of the decision cost from outside this package (the kernel's own planning
    /// entry points are `package`).
    ///
    /// - Returns: the number of calls the plan held.
    @discardableResult
    public func planWithoutSending(_ request: OrganicRequest) async -> Int {
        let plan = await plan(request)
        abandon(plan)
        return plan.calls.count
    }
}
