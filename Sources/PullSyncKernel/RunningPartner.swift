import CoreMetrics

/// One partner at run time: its definition, its protection in this process (circuit, budget,
/// pause, calls in flight) and its metric handles, together, so nothing is kept in arrays
/// that must stay aligned by index.
package final class RunningPartner: Sendable {
    /// The partner as loaded.
    package let definition: Partner
    /// Its circuit, budget and pause.
    package let protection: PartnerProtection
    let metrics: PartnerMetrics
    /// Its place in the registry: partners in registry order have ascending ordinals.
    let ordinal: Int

    init(_ definition: Partner, ordinal: Int, protection: PartnerProtection, metricsFactory: any MetricsFactory) {
        self.definition = definition
        self.ordinal = ordinal
        self.protection = protection
        self.metrics = PartnerMetrics(partnerID: definition.id, factory: metricsFactory)
    }

    package var id: String { definition.id }
}
