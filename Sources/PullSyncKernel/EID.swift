/// How a partner's UID appears in a bid request, as an OpenRTB 2.6 extended identifier: the
/// manifest's `eid:` mapping (`source`, `atype`, `mm`), with its defaults.
public struct EIDMapping: Sendable, Hashable {
    /// The EID's `source`: the domain of the ID's owner. Default the partner's `source_domain`.
    public var source: String
    /// The UIDs' `atype`, from AdCOM's list of agent types: 1 an ID tied to one browser or device
    /// (a cookie ID), 2 an in-app device ID, 3 a person-based ID, the same across devices.
    /// Default 3 (the contract's default; a partner whose UID is a cookie ID says `atype: 1`).
    public var agentType: Int
    /// The EID's `mm` (match method, 0 to 5), or `nil` to leave it out (the default).
    public var matchMethod: Int?

    /// Creates a mapping; `source` is normalized like a host name (lowercased, no trailing dot).
    public init(source: String, agentType: Int = 3, matchMethod: Int? = nil) {
        self.source = HostName.normalize(source)
        self.agentType = agentType
        self.matchMethod = matchMethod
    }

    /// The OpenRTB 2.6 `atype` values a mapping may use.
    public static let agentTypes = 1...3
    /// The OpenRTB 2.6 `mm` values a mapping may use.
    public static let matchMethods = 0...5
}

/// An OpenRTB 2.6 extended identifier (the `EID` object of `user.eids`): the UIDs one source
/// gave for the user. Encodes with OpenRTB's field names; absent fields are left out.
public struct EID: Sendable, Hashable, Codable {
    /// The OpenRTB 2.6 `UID` object: one identifier.
    public struct UID: Sendable, Hashable, Codable {
        /// The identifier.
        public var id: String
        /// The agent type (AdCOM): 1 browser or device, 2 in-app device ID, 3 person-based.
        public var atype: Int

        /// Creates a UID object.
        public init(id: String, atype: Int) {
            self.id = id
            self.atype = atype
        }
    }

    /// The domain of the ID's owner.
    public var source: String
    /// The identifiers.
    public var uids: [UID]
    /// Who added the EID to the request: the host's domain
    /// (``PullSyncConfiguration/eidInserter``), or `nil`.
    public var inserter: String?
    /// The match method, 0 to 5, or `nil`.
    public var mm: Int?

    /// Creates an EID object.
    public init(source: String, uids: [UID], inserter: String? = nil, mm: Int? = nil) {
        self.source = source
        self.uids = uids
        self.inserter = inserter
        self.mm = mm
    }

    /// The EIDs for partners' UIDs: one object per (`source`, `mm`), its UIDs in the order given,
    /// the objects ordered by source, then match method (absent first).
    package static func make(
        _ entries: some Sequence<(mapping: EIDMapping, uid: String)>,
        inserter: String?
    ) -> [EID] {
        var eids: [EID] = []
        for (mapping, uid) in entries {
            let object = UID(id: uid, atype: mapping.agentType)
            if let index = eids.firstIndex(where: { $0.source == mapping.source && $0.mm == mapping.matchMethod }) {
                eids[index].uids.append(object)
            } else {
                eids.append(EID(source: mapping.source, uids: [object], inserter: inserter, mm: mapping.matchMethod))
            }
        }
        eids.sort { ($0.source, $0.mm ?? -1) < ($1.source, $1.mm ?? -1) }
        return eids
    }
}
