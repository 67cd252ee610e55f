import Foundation

extension Encodable {
    /// One line of JSON with sorted keys, as the commands' `--json` prints it.
    func jsonString() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}
