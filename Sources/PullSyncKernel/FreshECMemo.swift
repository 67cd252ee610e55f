import Synchronization

/// ECs for which nothing can be called until a known time, remembered on this node: a
/// returning browser whose partners' UIDs are all fresh costs a hash lookup per page view,
/// not a queued request, a store read and a decision per partner.
///
/// An entry is made after a real decision in which no partner could be called and every
/// partner's reason holds until a known time: its UID is fresh (until the earliest expiry), it
/// is disabled, or the request's own consent refuses it (`tcf_consent`, `gpp_section`). One is
/// also made once a decision's calls have each stored a UID, when every partner not called was
/// so: the browser's next page view then skips, without one more decision to find that out. It
/// holds for requests with the same consent signals; other signals, a withdrawal of the EC or
/// a reload (a new kernel, a new memo) end it. It only ever skips, so it is safe beside other
/// nodes: the worst a stale entry does is delay a call until it expires.
///
/// Once the host has asked for EIDs (``PullKernel/eids(for:consent:strings:)``), an entry also
/// keeps the fresh UIDs of the partners the request's consent allows, so that a returning
/// browser's EIDs come from here with no store read: they are the UIDs the decision read, and
/// nothing can replace them on this node while the entry holds (no call is made).
///
/// Bounded: at most `capacity` entries; a new one replaces the oldest.
final class FreshECMemo: Sendable {
    /// A fresh UID kept with an entry, for EIDs.
    struct KeptUID: Sendable, Hashable {
        /// The partner's ordinal in the kernel's registry (the memo lives as long as it does).
        var partner: Int
        var uid: PartnerUID
    }

    /// What a plan with calls knows for an entry, when every partner it doesn't call holds
    /// until a known time: the entry is made once each of its calls has stored a UID.
    struct Seed: Sendable {
        /// The request's consent signals, hashed (``consent(of:)``).
        var consent: Int
        /// Until when the partners not called hold.
        var until: Timestamp
        /// Their fresh UIDs, when entries keep them.
        var uids: [KeptUID]?
    }

    private struct Entry {
        /// The request's consent signals, hashed: other signals, other decisions.
        var consent: Int
        var until: Timestamp
        /// `nil` when UIDs weren't kept (nobody had asked for EIDs yet).
        var uids: [KeptUID]?
    }

    private struct State {
        var entries: [ECKey: Entry] = [:]
        /// Keys in the order they were added; once full, `next` is the oldest.
        var order: [ECKey] = []
        var next = 0
    }

    /// The longest an entry holds, even when nothing would change sooner (every partner
    /// refused by consent): a bound on how long a wrong entry could last.
    static let longest = Duration.seconds(3600)

    private let capacity: Int
    private let state: Mutex<State>
    private let keepingUIDs = Atomic(false)

    init(capacity: Int) {
        self.capacity = max(0, capacity)
        var state = State()
        state.entries.reserveCapacity(self.capacity)
        state.order.reserveCapacity(self.capacity)
        self.state = Mutex(state)
    }

    /// The hash of `request`'s consent that an entry is compared on; `nil` when the request
    /// can't be remembered (the host's per-partner policy is code, not a value to compare).
    static func consent(of request: OrganicRequest) -> Int? {
        consent(request.consent, request.consentStrings)
    }

    /// The hash of a request's consent decision and signals (see ``consent(of:)``).
    static func consent(_ decision: ConsentDecision, _ strings: ConsentStrings) -> Int? {
        guard decision.partnerPolicy == nil else { return nil }
        var hasher = Hasher()
        hasher.combine(decision.granted)
        hasher.combine(strings)
        return hasher.finalize()
    }

    /// Whether new entries keep their UIDs.
    var keepsUIDs: Bool { keepingUIDs.load(ordering: .relaxed) }

    /// From now on, entries keep their UIDs (EIDs are being read on this node).
    func startKeepingUIDs() {
        if !keepsUIDs { keepingUIDs.store(true, ordering: .relaxed) }
    }

    /// The UIDs kept with the entry that holds for `ec` under `consent` at `now`; `nil` when
    /// none holds or it kept none.
    func uids(_ ec: ECKey, consent: Int, at now: Timestamp) -> [KeptUID]? {
        state.withLock { state in
            guard let entry = state.entries[ec], entry.consent == consent, now < entry.until else { return nil }
            return entry.uids
        }
    }

    /// Whether nothing can be called for `ec` under `consent` at `now`.
    func holds(_ ec: ECKey, consent: Int, at now: Timestamp) -> Bool {
        state.withLock { state in
            guard let entry = state.entries[ec] else { return false }
            return entry.consent == consent && now < entry.until
        }
    }

    /// Gives `uids` to the entry that holds for `ec` under `consent` at `now`, if it kept none (it
    /// was made before anyone asked for EIDs): its EC's next EIDs come from here.
    func keep(_ uids: [KeptUID], for ec: ECKey, consent: Int, at now: Timestamp) {
        state.withLock { state in
            guard let entry = state.entries[ec], entry.uids == nil, entry.consent == consent, now < entry.until else {
                return
            }
            state.entries[ec]?.uids = uids
        }
    }

    /// Remembers that nothing can be called for `ec` under `consent` before `until`, and the
    /// fresh UIDs the consent allows (when ``keepsUIDs``).
    func remember(_ ec: ECKey, consent: Int, until: Timestamp, uids: [KeptUID]? = nil) {
        guard capacity > 0 else { return }
        state.withLock { state in
            let entry = Entry(consent: consent, until: until, uids: uids)
            if state.entries.updateValue(entry, forKey: ec) != nil { return }
            if state.order.count < capacity {
                state.order.append(ec)
            } else {
                state.entries[state.order[state.next]] = nil
                state.order[state.next] = ec
                state.next = (state.next + 1) % capacity
            }
        }
    }

    /// Forgets `ec` (its consent was withdrawn).
    func forget(_ ec: ECKey) {
        _ = state.withLock { $0.entries.removeValue(forKey: ec) }
    }

    /// Entries held.
    var count: Int { state.withLock { $0.entries.count } }
}
