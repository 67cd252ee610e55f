import StrictYAML
import Testing

/// The reader on its own: the tree and its positions, YAML 1.2 core scalars, and each refusal
/// as a kind at its position (the manifest loader's tests check the wording).
@Suite struct YAMLReaderTests {
    private func read(_ text: String, maxBytes: Int = 1_000) -> YAMLReader.Outcome {
        YAMLReader.read(Array(text.utf8), maxBytes: maxBytes)
    }

    private func problems(_ text: String, maxBytes: Int = 1_000) -> [YAMLProblem] {
        guard case .failed(let problems) = read(text, maxBytes: maxBytes) else { return [] }
        return problems
    }

    @Test func aTreeWithItsPositions() throws {
        guard case .document(let root, let tags) = read("id: acme\nlist:\n  - 1\n  - 'two'\n") else {
            Issue.record("not read")
            return
        }
        #expect(tags.isEmpty)
        guard case .mapping(let pairs) = root.content else {
            Issue.record("root is not a mapping")
            return
        }
        #expect(pairs.map { $0.key.text } == ["id", "list"])
        #expect(pairs[0].value.position == SourcePosition(line: 1, column: 5))
        #expect(pairs[0].value.verbatimStart == SourcePosition(line: 1, column: 5))
        guard case .list(let items) = pairs[1].value.content else {
            Issue.record("list is not a list")
            return
        }
        #expect(items.map(\.position) == [SourcePosition(line: 3, column: 5), SourcePosition(line: 4, column: 5)])
        #expect(items.map(\.meaning) == [.integer(1), .text("two")])
    }

    @Test(arguments: [
        ("a: true", ScalarMeaning.bool(true)),
        ("a: yes", .text("yes")),
        ("a: ~", .null),
        ("a:", .null),
        ("a: 0x10", .text("0x10")),
        ("a: 1.5e3", .number(1500)),
        ("a: .inf", .text(".inf")),
        ("a: '12'", .text("12")),
    ])
    func coreSchemaScalars(text: String, meaning: ScalarMeaning) {
        guard case .document(let root, _) = read(text), case .mapping(let pairs) = root.content else {
            Issue.record("not read")
            return
        }
        #expect(pairs.first?.value.meaning == meaning)
    }

    @Test(arguments: [
        ("a: &x 1\nb: *x\n", [
            YAMLProblem(.anchor("&x"), at: SourcePosition(line: 1, column: 4)),
            YAMLProblem(.alias("*x"), at: SourcePosition(line: 2, column: 4)),
        ]),
        ("a: 1\n---\nb: 2\n", [YAMLProblem(.secondDocument, at: SourcePosition(line: 2, column: 1))]),
        ("a:\n\t- 1\n", [YAMLProblem(.tabIndentation, at: SourcePosition(line: 2, column: 1))]),
        ("a: [1\n", [
            YAMLProblem(
                .syntax(
                    "did not find expected ',' or ']'",
                    context: "while parsing a flow sequence",
                    contextPosition: SourcePosition(line: 1, column: 4)
                ),
                at: SourcePosition(line: 2, column: 1)
            )
        ]),
        ("a: \u{1}", [YAMLProblem(.disallowedCharacter(1), at: SourcePosition(line: 1, column: 4))]),
    ])
    func refusalsAtTheirPositions(text: String, expected: [YAMLProblem]) {
        #expect(problems(text) == expected)
    }

    @Test func tagsAreReportedBesideTheTree() {
        guard case .document(let root, let tags) = read("a: !!str 1\n") else {
            Issue.record("not read")
            return
        }
        #expect(tags == [YAMLProblem(.tag("!!str"), at: SourcePosition(line: 1, column: 4))])
        guard case .mapping(let pairs) = root.content else { return }
        #expect(pairs.first?.value.text == "1")
    }

    @Test func anAliasBombIsRefusedWithoutExpanding() {
        var text = "a: &a [x, x, x, x, x, x, x, x, x]\n"
        for level in 1...9 {
            text += "\(Character(UnicodeScalar(UInt8(97 + level)))): &\(level) [" + Array(repeating: "*a", count: 9)
                .joined(separator: ", ") + "]\n"
        }
        let found = problems(text, maxBytes: 10_000)
        #expect(found.count == YAMLReader.maxRefusals)
        #expect(found.first == YAMLProblem(.anchor("&a"), at: SourcePosition(line: 1, column: 4)))
    }

    @Test func depthAndSizeAreBounded() {
        let deep = String(repeating: "[", count: 20_000)
        #expect(
            problems(deep, maxBytes: 100_000)
                == [YAMLProblem(.tooDeep(limit: YAMLReader.maxDepth), at: SourcePosition(line: 1, column: 65))]
        )
        #expect(problems("a: 12345", maxBytes: 4) == [YAMLProblem(.tooLarge(bytes: 8, limit: 4), at: .start)])
        #expect(problems("a: \u{FF}", maxBytes: 10).isEmpty)
        #expect(
            YAMLReader.read([0x61, 0x3A, 0x20, 0xFF], maxBytes: 10).problems
                == [YAMLProblem(.notUTF8(byte: 0xFF), at: SourcePosition(line: 1, column: 4))]
        )
    }
}

extension YAMLReader.Outcome {
    fileprivate var problems: [YAMLProblem] {
        if case .failed(let problems) = self { problems } else { [] }
    }
}
