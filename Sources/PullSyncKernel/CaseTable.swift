/// One value per case of a payload-free enum, found by the case itself: the metric handles
/// looked up on every page view and decision. A dictionary keyed by a raw-value enum hashes and
/// compares the raw `String` on each lookup (`RawRepresentable`'s `Hashable`); this reads the
/// case's tag, checked once at creation to be its place in `allCases`.
package struct CaseTable<Key: CaseIterable, Value> {
    private let values: [Value]

    package init(_ value: (Key) -> Value) {
        let keys = Array(Key.allCases)
        precondition(MemoryLayout<Key>.size == 1 && keys.indices.allSatisfy { Self.place(keys[$0]) == $0 })
        values = keys.map(value)
    }

    package subscript(key: Key) -> Value { values[Self.place(key)] }

    private static func place(_ key: Key) -> Int {
        withUnsafeBytes(of: key) { Int($0[0]) }
    }
}

extension CaseTable: Sendable where Value: Sendable {}
