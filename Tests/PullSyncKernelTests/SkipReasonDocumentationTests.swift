import Foundation
import PullSyncKernel
import Testing

@Suite struct SkipReasonDocumentationTests {
    @Test("Every reason has a row in the reasons table of the Decisions article")
    func documented() throws {
        let article = try String(
            contentsOf: URL(fileURLWithPath: #filePath)
                .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Sources/PullSync/PullSync.docc/Decisions.md"),
            encoding: .utf8
        )
        for reason in SkipReason.allCases {
            #expect(article.contains("| `\(reason.rawValue)` |"), "\(reason.rawValue)")
        }
    }
}
