/// The reference edge implementation's fan-out, the baseline of the head-of-line measure: send up
/// to `concurrency` calls, wait for all of them, then send the next batch.
enum BatchAndWait {
    /// Runs `body` for every item in batches of `concurrency`, each batch only after the whole
    /// previous one has finished.
    static func run<Item: Sendable>(
        _ items: [Item],
        concurrency: Int,
        _ body: @escaping @Sendable (Item) async -> Void
    ) async {
        precondition(concurrency >= 1)
        var start = 0
        while start < items.count {
            let batch = items[start..<min(items.count, start + concurrency)]
            await withTaskGroup(of: Void.self) { group in
                for item in batch { group.addTask { await body(item) } }
            }
            start += concurrency
        }
    }
}
