/// The partners the kernel knows, indexed once at load time so that no request scans them.
public struct PartnerRegistry: Sendable {
    /// Every partner, in load order.
    public let partners: [Partner]
    /// Indices (into `partners`) of the partners enabled for pull sync.
    package let enabledIndices: [Int]
    private let indexByID: [String: Int]
    private let enabledFlags: [Bool]

    /// Indexes `partners`; ids and source domains must be valid and unique.
    public init(_ partners: [Partner]) throws(PartnerRegistryError) {
        var problems: [String] = []
        var indexByID: [String: Int] = [:]
        var domains: [String: String] = [:]
        for (index, partner) in partners.enumerated() {
            if !Partner.isValidID(partner.id) {
                problems.append("partner id '\(partner.id)' must match ^[a-z0-9_-]{1,32}$ and not be reserved")
            }
            if let earlier = indexByID.updateValue(index, forKey: partner.id) {
                problems.append("duplicate partner id '\(partner.id)' (also partner #\(earlier + 1))")
            }
            if !HostName.isValidDNSName(partner.sourceDomain) {
                problems.append("partner '\(partner.id)': source_domain '\(partner.sourceDomain)' is not a DNS name")
            }
            if let other = domains.updateValue(partner.id, forKey: partner.sourceDomain) {
                problems.append("partners '\(other)' and '\(partner.id)' share source_domain '\(partner.sourceDomain)'")
            }
        }
        guard problems.isEmpty else { throw PartnerRegistryError(problems: problems) }
        self.partners = partners
        self.indexByID = indexByID
        let enabledFlags = partners.map { $0.pullEnabled && $0.disabledReason == nil }
        self.enabledFlags = enabledFlags
        self.enabledIndices = partners.indices.filter { enabledFlags[$0] }
    }

    /// Whether the partner at `index` is enabled for pull sync.
    package func isEnabled(_ index: Int) -> Bool { enabledFlags[index] }

    /// The index of the partner with `id`.
    package func index(of id: String) -> Int? { indexByID[id] }

    /// The partner with `id`.
    package subscript(id id: String) -> Partner? {
        indexByID[id].map { partners[$0] }
    }
}

/// Why partners can't form a registry: every problem found, one per entry.
public struct PartnerRegistryError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong, one line each (never a secret).
    public var problems: [String]

    package init(problems: [String]) {
        self.problems = problems
    }

    public var description: String { problems.joined(separator: "\n") }
}
