package import PullSyncKernel
import Synchronization

/// An identity graph in process memory (`memory:` store): lost on exit, exact, and the
/// reference for what other stores must do.
package final class InMemoryIdentityGraph: IdentityGraph, BackfillSource, OptOutOutbox {
    private let records: Mutex<[String: ECRecord]>
    /// Revocations by EC hash and source domain: the time each partner was last revoked.
    private let revocations = Mutex<[String: [String: Timestamp]]>([:])
    private let checkpoints = Mutex<[String: BackfillCheckpoint]>([:])
    /// Consent snapshots by EC hash.
    private let snapshots = Mutex<[String: ConsentSnapshot]>([:])
    /// The opt-out outbox by EC hash, then source domain.
    private let outbox = Mutex<[String: [String: OutboxEntry]]>([:])

    private struct OutboxEntry {
        var task: OptOutTask
        var nextAt: Timestamp
        var result: String?
        /// When the UID the partner is told about was learned.
        var uidSyncedAt: Timestamp
    }

    package init(records: [ECRecord] = []) {
        self.records = Mutex(Dictionary(records.map { ($0.ecHash, $0) }, uniquingKeysWith: { _, last in last }))
    }

    package func record(ecHash: String) async throws -> ECRecord? {
        records.withLock { $0[ecHash] }
    }

    /// A write is a lock and a dictionary update: nothing worth a turn of the scheduler to share.
    package var writeIsRoundTrip: Bool { false }

    package func createRoot(for edgeCookie: EdgeCookie, at now: Timestamp, consent: ConsentSnapshot?) async throws
        -> ECRecord
    {
        createRootIfAbsent(for: edgeCookie, at: now, consent: consent).record
    }

    /// The root entry of `edgeCookie`, and whether this call created it.
    package func createRootIfAbsent(for edgeCookie: EdgeCookie, at now: Timestamp, consent: ConsentSnapshot?)
        -> (record: ECRecord, created: Bool)
    {
        records.withLock { records in
            let hash = edgeCookie.hashString
            if let existing = records[hash] { return (existing, false) }
            let record = ECRecord(ecHash: hash, ecID: edgeCookie.value, createdAt: now, consentDigest: consent?.digest)
            records[hash] = record
            snapshots.withLock { $0[hash] = consent }
            return (record, true)
        }
    }

    // Lock order: records, then revocations, snapshots or the outbox.

    package func write(_ writes: [UIDWrite], ecHash: String) async throws -> [WriteResult] {
        records.withLock { records in
            guard var record = records[ecHash] else { return writes.map { _ in .unknownEC } }
            if record.withdrawn { return writes.map { _ in .withdrawn } }
            let revoked = revocations.withLock { $0[ecHash] ?? [:] }
            let results: [WriteResult] = writes.map { write in
                if let at = revoked[write.sourceDomain], at >= write.plannedAt { return .revoked }
                guard record.partners[write.sourceDomain] == write.expected else { return .conflict }
                record.partners[write.sourceDomain] = write.value
                return .stored
            }
            records[ecHash] = record
            return results
        }
    }

    package func withdraw(ecHash: String, at now: Timestamp, notifying: [String]) async throws -> Bool {
        records.withLock { records in
            guard var record = records[ecHash] else { return false }
            enqueueOptOuts(for: notifying.compactMap { domain in record.partners[domain].map { (domain, $0) } }, record: record, at: now)
            record.withdrawn = true
            record.partners.removeAll()
            record.consentDigest = nil
            records[ecHash] = record
            _ = revocations.withLock { $0.removeValue(forKey: ecHash) }
            _ = snapshots.withLock { $0.removeValue(forKey: ecHash) }
            return true
        }
    }

    package func revoke(_ sourceDomains: [String], ecHash: String, at now: Timestamp, notifying: [String]) async throws
        -> [String]
    {
        records.withLock { records in
            guard var record = records[ecHash], !record.withdrawn else { return [] }
            let removed = sourceDomains.compactMap { domain in record.partners.removeValue(forKey: domain).map { (domain, $0) } }
            let forgotten = removed.map(\.0)
            enqueueOptOuts(for: removed.filter { notifying.contains($0.0) }, record: record, at: now)
            records[ecHash] = record
            revocations.withLock { revocations in
                for domain in sourceDomains { revocations[ecHash, default: [:]][domain] = now }
            }
            return forgotten
        }
    }

    package func markSeen(ecHash: String, at now: Timestamp, consent: ConsentSnapshot?) async throws {
        records.withLock { records in
            guard var record = records[ecHash], !record.withdrawn else { return }
            record.seenAt = max(record.seenAt, now)
            // The snapshot only if it is not older than the stored one.
            if let consent, snapshots.withLock({ $0[ecHash].map { $0.seenAt <= consent.seenAt } ?? true }) {
                record.consentDigest = consent.digest
                snapshots.withLock { $0[ecHash] = consent }
            }
            records[ecHash] = record
        }
    }

    /// One batch of retention (see `PullSyncStore.forget(uidsSyncedBefore:ecsSeenBefore:limit:)`).
    package func forget(uidsSyncedBefore: Timestamp, ecsSeenBefore: Timestamp, limit: Int) -> RetentionBatch {
        records.withLock { records in
            // Not an EC with an opt-out still to be delivered.
            let owing = outbox.withLock { outbox in Set(outbox.filter { $0.value.values.contains { $0.result == nil } }.keys) }
            let idle = records.values.lazy.filter { $0.seenAt < ecsSeenBefore && !owing.contains($0.ecHash) }
                .prefix(max(0, limit)).map(\.ecHash)
            var batch = RetentionBatch(uids: 0, ecs: 0)
            for hash in Array(idle) {
                records[hash] = nil
                _ = revocations.withLock { $0.removeValue(forKey: hash) }
                _ = snapshots.withLock { $0.removeValue(forKey: hash) }
                _ = outbox.withLock { $0.removeValue(forKey: hash) }
                batch.ecs += 1
            }
            revocations.withLock { revocations in
                for (hash, marks) in revocations where batch.uids < limit {
                    for (domain, at) in marks where at < uidsSyncedBefore && batch.uids < limit {
                        revocations[hash]?[domain] = nil
                        batch.uids += 1
                    }
                    if revocations[hash]?.isEmpty == true { revocations[hash] = nil }
                }
            }
            for hash in Array(records.keys) where batch.uids < limit {
                for (domain, uid) in records[hash]?.partners ?? [:] where uid.syncedAt < uidsSyncedBefore && batch.uids < limit {
                    records[hash]?.partners[domain] = nil
                    batch.uids += 1
                }
            }
            return batch
        }
    }

    /// Whether `sourceDomain` was revoked for the EC (a backfill leaves such pairs alone).
    package func isRevoked(_ sourceDomain: String, ecHash: String) -> Bool {
        revocations.withLock { $0[ecHash]?[sourceDomain] != nil }
    }

    /// Stores `uid` unconditionally (a second writer, seeding, tests).
    package func set(_ uid: PartnerUID, sourceDomain: String, ecHash: String) {
        records.withLock { records in
            records[ecHash]?.partners[sourceDomain] = uid
        }
    }

    /// Every record, for inspection.
    package var allRecords: [ECRecord] {
        records.withLock { Array($0.values) }
    }

    // MARK: OptOutOutbox

    /// Adds a task per (domain, UID), unless the pair has one pending, or one settled about that
    /// UID or a newer one. Called under the records lock.
    private func enqueueOptOuts(for uids: [(String, PartnerUID)], record: ECRecord, at now: Timestamp) {
        guard !uids.isEmpty else { return }
        outbox.withLock { outbox in
            for (domain, uid) in uids {
                if let existing = outbox[record.ecHash]?[domain],
                    existing.result == nil || existing.uidSyncedAt >= uid.syncedAt
                {
                    continue
                }
                let task = OptOutTask(sourceDomain: domain, ecHash: record.ecHash, ecID: record.ecID, enqueuedAt: now)
                outbox[record.ecHash, default: [:]][domain] = OutboxEntry(
                    task: task,
                    nextAt: now,
                    result: nil,
                    uidSyncedAt: uid.syncedAt
                )
            }
        }
    }

    package func claimOptOuts(at now: Timestamp, limit: Int, until claimedUntil: Timestamp) async throws -> [OptOutTask] {
        outbox.withLock { outbox in
            let due = outbox.values.flatMap(\.values).filter { $0.result == nil && $0.nextAt <= now }
            let claimed = due.sorted {
                ($0.nextAt, $0.task.ecHash, $0.task.sourceDomain) < ($1.nextAt, $1.task.ecHash, $1.task.sourceDomain)
            }.prefix(max(0, limit)).map(\.task)
            for task in claimed { outbox[task.ecHash]?[task.sourceDomain]?.nextAt = claimedUntil }
            return claimed
        }
    }

    package func settleOptOut(_ task: OptOutTask, _ settlement: OptOutSettlement, at now: Timestamp) async throws {
        outbox.withLock { outbox in
            guard var entry = outbox[task.ecHash]?[task.sourceDomain], entry.result == nil else { return }
            entry.task.attempts += 1
            if case .retry(let at) = settlement { entry.nextAt = at }
            entry.result = settlement.storedResult
            outbox[task.ecHash]?[task.sourceDomain] = entry
        }
    }

    package func pendingOptOuts() async throws -> Int {
        outbox.withLock { $0.values.reduce(0) { $0 + $1.values.filter { $0.result == nil }.count } }
    }

    // MARK: BackfillSource

    package func backfillCandidates(
        _ query: BackfillQuery,
        after: String?,
        limit: Int
    ) async throws
        -> [BackfillCandidate]
    {
        let matching = candidates(query, after: after).sorted { $0.ecHash < $1.ecHash }.prefix(max(0, limit))
        let kept = snapshots.withLock { $0 }
        return matching.map { BackfillCandidate(ecHash: $0.ecHash, ecID: $0.ecID, consent: kept[$0.ecHash]) }
    }

    package func countBackfillCandidates(_ query: BackfillQuery, after: String?) async throws -> Int {
        candidates(query, after: after).count
    }

    private func candidates(_ query: BackfillQuery, after: String?) -> [ECRecord] {
        records.withLock { records in
            records.values.filter { record in
                (after.map { record.ecHash > $0 } ?? true) && query.matches(record)
                    && !isRevoked(query.sourceDomain, ecHash: record.ecHash)
            }
        }
    }

    package func backfillCheckpoint(partnerID: String) async throws -> BackfillCheckpoint? {
        checkpoints.withLock { $0[partnerID] }
    }

    package func saveBackfillCheckpoint(_ checkpoint: BackfillCheckpoint) async throws {
        checkpoints.withLock { $0[checkpoint.partnerID] = checkpoint }
    }

    package func clearBackfillCheckpoint(partnerID: String) async throws {
        _ = checkpoints.withLock { $0.removeValue(forKey: partnerID) }
    }
}
