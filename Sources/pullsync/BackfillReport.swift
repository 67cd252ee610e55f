import Foundation
import PullSync
import PullSyncStorage

/// How `pullsync backfill` prints progress, summaries and dry runs.
enum BackfillReport {
    /// `[#####-----] 4,213/10,000  42.1%  498/s  ETA 0:12  uid 3,900 · not_found 300`
    static func bar(_ progress: BackfillProgress, width: Int = 24) -> String {
        let fraction = progress.total > 0 ? min(1, Double(progress.processed) / Double(progress.total)) : 1
        let filled = Int((fraction * Double(width)).rounded(.down))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        return "[\(bar)] " + status(progress)
    }

    /// One progress line, for logs.
    static func line(_ progress: BackfillProgress) -> String {
        status(progress)
    }

    private static func status(_ progress: BackfillProgress) -> String {
        let percent = progress.total > 0 ? Double(progress.processed) / Double(progress.total) * 100 : 100
        var parts = [
            "\(grouped(progress.processed))/\(grouped(progress.total))",
            "\(fixed(percent, 1))%",
            "\(fixed(progress.ratePerSecond, 1)) ECs/s",
        ]
        if let eta = progress.eta { parts.append("ETA \(clock(eta))") }
        let outcomes = progress.outcomes.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }
            .map { "\($0.key) \(grouped($0.value))" }
        if !outcomes.isEmpty { parts.append(outcomes.joined(separator: " · ")) }
        return parts.joined(separator: "  ")
    }

    /// The table printed when a run ends.
    static func summary(_ summary: BackfillSummary, partner: Partner, options: BackfillOptions) -> String {
        let progress = summary.progress
        let seconds = progress.elapsed.seconds
        let ending =
            switch summary.ending {
            case .complete: "complete"
            case .limit: "stopped at --limit \(options.limit ?? 0); run again to go on"
            case .interrupted: "interrupted; run the same command again to resume"
            }
        var lines = [
            "backfill \(partner.id) (\(partner.sourceDomain)): \(ending)",
            "  handled:  \(grouped(progress.processed)) of \(grouped(progress.total)) ECs"
                + " (\(grouped(progress.processedThisRun)) in this run\(progress.resumed ? ", resumed" : ""))",
            "  calls:    \(grouped(progress.callsThisRun)) in \(fixed(seconds, 1)) s;"
                + " \(fixed(progress.pacePerSecond, 1)) starts/s (--rate \(fixed(options.rate, 1))/s)",
        ]
        let rows = progress.outcomes.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }
        let width = max(7, rows.map(\.key.count).max() ?? 0)
        lines.append(pad("OUTCOME", width) + "  KIND  " + leftPad("ECS", 8))
        for (outcome, count) in rows {
            let kind = BackfillProgress.isCall(outcome) ? "call" : "skip"
            lines.append(pad(outcome, width) + "  " + kind + "  " + leftPad(grouped(count), 8))
        }
        if rows.isEmpty { lines.append("(no candidates)") }
        return lines.joined(separator: "\n")
    }

    /// What `--dry-run` prints.
    static func dryRun(_ planned: Backfill.DryRun, backfill: Backfill) -> String {
        var lines = ["backfill \(backfill.partner.id) (\(backfill.partner.sourceDomain)): dry run, nothing called"]
        if let checkpoint = planned.checkpoint {
            lines.append("  resumes:    after \(grouped(checkpoint.processed)) ECs handled by an earlier run")
        }
        let rate = backfill.options.rate
        let excluded = planned.excluded.values.reduce(0, +)
        let callable = planned.candidates - excluded
        lines.append("  candidates: \(grouped(planned.candidates)) ECs missing or stale, known and not withdrawn")
        lines.append("  consent:    \(grouped(excluded)) of them kept out by their consent snapshot, \(grouped(callable)) left")
        for (rule, count) in planned.excluded.sorted(by: { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }) {
            lines.append("    " + pad(rule, 20) + leftPad(grouped(count), 10) + "  " + (consentRules[rule] ?? ""))
        }
        lines.append(
            "  at \(fixed(rate, 1))/s:    at least \(clock(.milliseconds(Int64(Double(callable) / rate * 1000))))"
                + " with \(backfill.effectiveConcurrency) in flight at most"
        )
        if !planned.sample.isEmpty {
            lines.append("SAMPLE EC" + String(repeating: " ", count: 63) + "  DECISION")
            for (ecID, decision) in planned.sample {
                lines.append(pad(ecID, 72) + "  " + decision)
            }
        }
        return lines.joined(separator: "\n")
    }

    /// What each consent rule that excludes ECs means, for the dry run's table.
    private static let consentRules: [String: String] = [
        Backfill.noSnapshot: "no consent signals kept for the EC (seen before snapshots were kept)",
        Backfill.outdated: "signals older than --consent-max-age",
        SkipReason.tcfConsent.rawValue: "TCF: no vendor consent, no purpose 1, or restricted",
        SkipReason.gppSection.rawValue: "a GPP section the partner is skipped in applies",
        SkipReason.usOptOut.rawValue: "a US opt-out",
        SkipReason.malformedConsent.rawValue: "signals that don't decode",
    ]

    // MARK: Formatting

    static func grouped(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (index, digit) in digits.enumerated() {
            if index > 0, (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(digit)
        }
        return value < 0 ? "-" + out : out
    }

    static func fixed(_ value: Double, _ decimals: Int) -> String {
        String(format: "%.\(decimals)f", value)
    }

    /// `m:ss`, or `h:mm:ss` from an hour up.
    static func clock(_ duration: Duration) -> String {
        let total = Int(duration.seconds.rounded())
        let (hours, minutes, seconds) = (total / 3600, total % 3600 / 60, total % 60)
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return hours > 0 ? "\(hours):\(two(minutes)):\(two(seconds))" : "\(minutes):\(two(seconds))"
    }

    private static func pad(_ text: String, _ count: Int) -> String {
        text + String(repeating: " ", count: max(0, count - text.count))
    }

    private static func leftPad(_ text: String, _ count: Int) -> String {
        String(repeating: " ", count: max(0, count - text.count)) + text
    }
}
