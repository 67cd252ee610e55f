import Testing

@testable import PullSyncKernel

@Suite struct SkipReasonOrdinalTests {
    @Test("Each reason's table index is its position in allCases, so every counter is the right one")
    func ordinalIsPosition() {
        for (position, reason) in SkipReason.allCases.enumerated() {
            #expect(Int(reason.ordinal) == position, "\(reason)")
        }
    }
}
