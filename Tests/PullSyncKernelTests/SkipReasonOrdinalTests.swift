import Foundation
import Testing

@testable import PullSyncKernel

@Suite struct SkipReasonOrdinalTests {
    @Test("Each reason's table index is its position in allCases, so every counter is the right one")
    func ordinalIsPosition() {
        for (position, reason) in SkipReason.allCases.enumerated() {
            #expect(Int(reason.ordinal) == position, "\(reason)")
        }
    }

    @Test("Every reason has a row in the reasons table of the Decisions article")
    func documented() throws {
        let readme = try String(
            contentsOf: URL(fileURLWithPath: #filePath)
                .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Sources/PullSync/PullSync.docc/Decisions.md"),
            encoding: .utf8
        )
        for reason in SkipReason.allCases {
            #expect(readme.contains("| `\(reason.rawValue)` |"), "\(reason.rawValue)")
        }
    }
}
