import PartnerManifest
import PullSyncTesting
import Testing

/// No input may crash or hang the loader; each gets a clear diagnostic at a sensible place.
@Suite struct RobustnessTests {
    private static let depthMessage = "nesting deeper than 64 levels"

    private func only(_ bytes: [UInt8]) -> ManifestDiagnostic? {
        let diagnostics = ManifestFixtures.diagnostics(bytes)
        #expect(diagnostics.count == 1, "\(diagnostics.map(\.description))")
        return diagnostics.first
    }

    private func only(_ text: String) -> ManifestDiagnostic? { only(Array(text.utf8)) }

    @Test func randomBytes() {
        var generator = SeededRandomSource(seed: 0x5EED)
        for _ in 0..<50 {
            let bytes = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let diagnostic = only(bytes)
            #expect(diagnostic?.message.hasSuffix("is this a binary file?") == true, "\(diagnostic?.message ?? "")")
        }
    }

    @Test func pngHeader() {
        let png: [UInt8] = [
            0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
        ]
        let diagnostic = only(png + [UInt8](repeating: 0, count: 64))
        #expect(diagnostic?.line == 1)
        #expect(diagnostic?.column == 1)
        #expect(diagnostic?.message == "manifest is not UTF-8 text (byte 0x89 is invalid here); is this a binary file?")
    }

    @Test func invalidUTF8AfterValidLines() {
        let diagnostic = only(Array("id: acme\nname: caf".utf8) + [0xE9, 0x0A])
        #expect(diagnostic?.line == 2)
        #expect(diagnostic?.column == 10)
        #expect(diagnostic?.message == "manifest is not UTF-8 text (byte 0xE9 is invalid here); is this a binary file?")
    }

    @Test func utf16Text() {
        let diagnostic = only([0xFF, 0xFE] + Array("id: acme\n".utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }))
        #expect(
            diagnostic?.description
                == "m.yaml:1:1: error: manifest is not UTF-8 text (byte 0xFF is invalid here); is this a binary file?"
        )
    }

    @Test func controlCharacter() {
        let diagnostic = only("id: acme\nname: a\u{0}b\n")
        #expect(
            diagnostic?.description
                == "m.yaml:2:8: error: manifest contains the control character U+0000, which YAML does not allow; "
                + "is this a binary file?"
        )
    }

    @Test func hugeInput() {
        let diagnostic = only([UInt8](repeating: UInt8(ascii: "#"), count: 1_048_577))
        #expect(diagnostic?.description == "m.yaml:1:1: error: manifest is 1048577 bytes; the limit is 1048576")
    }

    @Test func inputAtTheSizeLimitIsParsed() {
        let text = "# " + String(repeating: "x", count: 1_048_576 - 3) + "\n"
        #expect(text.utf8.count == 1_048_576)
        let diagnostic = only(text)
        #expect(diagnostic?.message == "empty manifest; expected a mapping with keys id, source_domain, pull")
    }

    @Test(arguments: [
        ("[", 1, 65),
        ("{", 1, 65),
        ("{a: ", 1, 257),
        ("[{a: ", 1, 161),
        ("- ", 1, 129),
        ("? ", 1, 129),
        ("!!seq [", 1, 455),
    ])
    func deepNestingOnOneLine(_ unit: String, _ line: Int, _ column: Int) {
        let diagnostic = only(String(repeating: unit, count: 100_000))
        #expect(diagnostic?.line == line)
        #expect(diagnostic?.column == column)
        #expect(diagnostic?.message == Self.depthMessage)
    }

    @Test func deepBlockNesting() {
        let text = (0..<100_000).map { String(repeating: " ", count: $0 % 1000) + "k:\n" }.joined()
        let diagnostics = ManifestFixtures.diagnostics(String(text.prefix(1_000_000)))
        #expect(diagnostics.map(\.message) == [Self.depthMessage])
        #expect(diagnostics.first?.line == 65)
    }

    /// Block sequences at their mapping's own indentation nest without indenting further; the
    /// depth is counted on the node tree too.
    @Test func deepIndentlessSequences() {
        let text =
            "k:\n" + (1..<45).map { String(repeating: "  ", count: $0 - 1) + "- k:\n" }.joined()
            + String(repeating: "  ", count: 44) + "- x\n"
        let diagnostic = only(text)
        #expect(diagnostic?.message == Self.depthMessage)
        #expect(diagnostic?.line == 33)
    }

    @Test func bracketsInsideStringsAreNotNesting() throws {
        let manifest = try ManifestFixtures.manifest(
            ManifestFixtures.base + "name: \"" + String(repeating: "[{", count: 10_000) + "\"\n"
        )
        #expect(manifest.name.utf8.count == 20_000)
    }

    /// Billion laughs: refused before anything is expanded.
    @Test func aliasBomb() {
        var text = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        for level in 1..<30 {
            let previous = "*a\(level - 1)"
            text += "a\(level): &a\(level) [" + Array(repeating: previous, count: 9).joined(separator: ", ") + "]\n"
        }
        text += "? *a29\n: boom\n"
        let diagnostics = ManifestFixtures.diagnostics(text)
        #expect(diagnostics.count == 20)
        #expect(
            diagnostics.first?.description
                == "m.yaml:1:5: error: YAML anchors ('&a0') are not allowed in manifests; write each value out in full"
        )
        #expect(
            diagnostics.dropFirst(2).first?.description
                == "m.yaml:2:10: error: YAML aliases ('*a0') are not allowed in manifests; write each value out in full"
        )
    }

    @Test func aliasAsAKeyAndUndefinedAlias() {
        let diagnostics = ManifestFixtures.diagnostics("*k : v\nid: *nothing\n")
        #expect(
            diagnostics.map(\.description) == [
                "m.yaml:1:1: error: YAML aliases ('*k') are not allowed in manifests; write each value out in full",
                "m.yaml:2:5: error: YAML aliases ('*nothing') are not allowed in manifests; write each value out in full",
            ]
        )
    }

    @Test func mergeKeysNeedAliasesAndAreRefused() {
        let diagnostics = ManifestFixtures.diagnostics(
            "base: &base { ttl: 1h }\n" + ManifestFixtures.base + "  <<: *base\n"
        )
        #expect(diagnostics.map(\.line) == [1, 7])
    }

    @Test func manyDocuments() {
        let diagnostic = only(String(repeating: "---\nid: acme\n", count: 10_000))
        #expect(diagnostic?.line == 3)
        #expect(diagnostic?.column == 1)
        #expect(diagnostic?.message.hasPrefix("a manifest holds one YAML document") == true)
    }

    @Test func documentEndMarkerThenMore() {
        let diagnostic = only(ManifestFixtures.base + "...\nid: beta\n")
        #expect(diagnostic?.line == 7)
        #expect(diagnostic?.column == 1)
    }

    @Test func unterminatedQuote() {
        let diagnostic = only("id: 'acme\n")
        #expect(
            diagnostic?.description
                == "m.yaml:2:1: error: invalid YAML: found unexpected end of stream "
                + "(while scanning a quoted scalar at line 1, column 5)"
        )
    }

    @Test func badIndentation() {
        let diagnostic = only("id: acme\n  source_domain: acme.example\n")
        #expect(
            diagnostic?.description
                == "m.yaml:2:16: error: invalid YAML: mapping values are not allowed in this context"
        )
    }

    @Test func tabsBetweenKeyAndValueAreFine() throws {
        let manifest = try ManifestFixtures.manifest(ManifestFixtures.base + "name:\tAcme\n")
        #expect(manifest.name == "Acme")
    }

    @Test func tabIndentationAfterATabIsStillClear() {
        let diagnostic = only("id: acme\n\tname: x\n")
        #expect(
            diagnostic?.description == "m.yaml:2:1: error: tab character in indentation; YAML indents with spaces only"
        )
    }

    /// Every repeat is reported at its own place, naming the first; the document is read once.
    @Test func everyRepeatedKeyIsReported() {
        let text = (1...40).map { _ in "a: 1\n" }.joined()
        let repeats = ManifestFixtures.diagnostics(text).filter { $0.message.hasPrefix("duplicate key") }
        #expect(repeats.map(\.line) == Array(2...40))
        #expect(
            repeats.first?.description == "m.yaml:2:1: error: duplicate key 'a'; first defined at line 1, column 1"
        )
    }

    @Test func repeatedKeysAreEachReportedAtTheirLaterOccurrence() {
        let text = ManifestFixtures.base + "name: a\n'name': b\n\"name\": c\nconsent: {}\nconsent: {}\n"
        #expect(
            ManifestFixtures.diagnostics(text).map(\.description) == [
                "m.yaml:7:1: error: duplicate key 'name'; first defined at line 6, column 1",
                "m.yaml:8:1: error: duplicate key 'name'; first defined at line 6, column 1",
                "m.yaml:10:1: error: duplicate key 'consent'; first defined at line 9, column 1",
            ]
        )
    }

    /// A fuzz finding: a quoted template folded over blank lines named a variable holding a line
    /// break, which the message repeated. Messages stay one line each.
    @Test func lineBreaksFromTheManifestAreEscapedInMessages() {
        let diagnostic = only(ManifestFixtures.base + "  query:\n    id: \"{a\r\rb}\"\n")
        #expect(diagnostic?.line == 7)
        #expect(diagnostic?.column == 9)
        #expect(
            diagnostic?.message.hasPrefix("invalid template in 'pull.query.id': unknown template variable '{a\\nb}'")
                == true,
            "\(diagnostic?.message ?? "")"
        )
    }

    @Test func hugeNumbersAreRefusedNotTrapped() {
        let diagnostics = ManifestFixtures.diagnostics(
            ManifestFixtures.base
                + "  ttl: 99999999999999999999999d\n  rate_limit: { calls: 99999999999999999999999 }\n"
                + "  budget_per_second: 1e999\nconsent: { tcf_vendor_id: -99999999999999999999 }\n"
        )
        #expect(diagnostics.map(\.line) == [6, 7, 8, 9])
    }

    @Test func manyProblemsAreCapped() {
        let text = ManifestFixtures.base + (0..<5000).map { "  unknown\($0): 1\n" }.joined()
        let diagnostics = ManifestFixtures.diagnostics(text)
        #expect(diagnostics.count == 101)
        #expect(diagnostics.last?.message == "4900 more problems in this file not shown")
    }
}

extension RobustnessTests {
    /// Fragments that exercise every corner of YAML's token rules.
    static let fragments = [
        "&a", "*a", "!t", "!!str", "!<x,y>", "|", ">-", "'", "\"", "\\", "''", "#", " #", ":", ": ", "- ", "? ",
        "[", "]", "{", "}", ",", "\n", "\n  ", "\n    ", " ", "\t", "id", "acme", "pull", "url", "source_domain",
        "allowed_hosts", "{token}", "https://a.example/", "%", "---", "...", "\r\n", "\u{85}", "\u{2028}", "é", "😀",
        "a*b", "a&b", "@", "`", "0", "1s", "-1", "1e9", "~", "null", "true", "<<",
    ]

    @Test func generatedInputsAlwaysReturnADiagnosticOrAManifest() {
        var generator = SeededRandomSource(seed: 2024)
        for _ in 0..<3000 {
            var text = ""
            for _ in 0..<Int.random(in: 1...40, using: &generator) {
                text += Self.fragments.randomElement(using: &generator)!
            }
            switch ManifestLoader.load(bytes: Array(text.utf8), path: "m.yaml") {
            case .success(let manifest):
                #expect(!manifest.id.isEmpty)
            case .failure(let errors):
                #expect(!errors.diagnostics.isEmpty)
                for diagnostic in errors.diagnostics {
                    #expect(diagnostic.line >= 1 && diagnostic.column >= 1)
                }
            }
        }
    }
}
