import PartnerAdapterKit
import PullSyncKernel
import StrictYAML

/// The validated `pull.adapter` and `pull.params`.
struct CompiledAdapterSection {
    var name: String
    var parameters: AdapterParameters
    var secrets: [PartnerManifest.SecretUse]
}

extension ManifestValidator {
    /// The adapter names a manifest may give, for messages.
    var adapterNames: String {
        adapters.isEmpty ? "no compiled adapters are registered" : adapters.map(\.name).joined(separator: ", ")
    }

    /// `pull.adapter` (`entry`) and `pull.params`: the name must be registered, and the parameters
    /// must be exactly the adapter's, each of its kind.
    mutating func validateCompiledAdapter(_ entry: Entry, in pull: Fields) -> CompiledAdapterSection? {
        let before = problemCount
        // The keys of the manifest-driven protocol, which a compiled adapter replaces.
        for key in ["query", "headers", "auth", "response"] {
            guard let other = pull[key] else { continue }
            error(
                other.keyPosition,
                "'\(other.path)' does not apply with 'pull.adapter' (the compiled adapter builds the request "
                    + "and reads the answer); give its parameters in 'pull.params'"
            )
        }
        let valid = adapterNames
        guard let name = string(entry, expected: "the name of a compiled adapter (\(valid))") else { return nil }
        guard let descriptor = adapters.first(where: { $0.name == name }) else {
            let suggestion =
                KeySuggestion.closest(to: name, in: adapters.map(\.name)).map { "; did you mean '\($0)'?" } ?? ""
            error(
                entry.value.position,
                "unknown adapter \(Quote.text(name)) in 'pull.adapter'; valid: \(valid)\(suggestion)"
            )
            return nil
        }

        let names = descriptor.parameters.map(\.name)
        let paramsEntry = pull["params"]
        var given: Fields?
        if let paramsEntry {
            let expected = "a mapping of adapter '\(name)' parameters (\(names.joined(separator: ", ")))"
            given = fields(of: paramsEntry, validKeys: names, expected: expected)
            if given == nil { return nil }
        }
        var values: [String: AdapterParameterValue] = [:]
        var secrets: [PartnerManifest.SecretUse] = []
        for parameter in descriptor.parameters {
            guard let item = given?[parameter.name] else {
                // Reported at `pull.params`, or at the adapter's name when there is no `pull.params`.
                if parameter.requirement == .required {
                    let summary = parameter.summary.dropLast(parameter.summary.hasSuffix(".") ? 1 : 0)
                    error(
                        paramsEntry?.value.position ?? entry.value.position,
                        "missing required key 'pull.params.\(parameter.name)' for adapter '\(name)': \(summary)"
                    )
                }
                continue
            }
            guard let value = parameterValue(item, kind: parameter.kind) else { continue }
            if let problem = parameter.problem(with: value) {
                // A text value is the scalar itself; a secret reference is never repeated.
                let found = if case .secret = value { "" } else { "; found \(item.value.found())" }
                error(item.value.position, "'\(item.path)' \(problem)\(found)")
            } else {
                values[parameter.name] = value
                // Where the secret's name or path is written (inside `{ env: NAME }`).
                if case .secret(let reference) = value, case .mapping(let pairs) = item.value.content,
                    let at = pairs.first?.value.position
                {
                    secrets.append(.init(reference: reference, key: item.path, line: at.line, column: at.column))
                }
            }
        }
        guard problemCount == before else { return nil }
        do {
            let parameters = try AdapterParameters(values, for: descriptor)
            return CompiledAdapterSection(name: name, parameters: parameters, secrets: secrets)
        } catch {
            // The checks above are the descriptor's own; this is a second line of defence.
            self.error(entry.value.position, "adapter '\(name)': \(error.message)")
            return nil
        }
    }

    /// The value of one parameter, read as its kind says.
    private mutating func parameterValue(_ entry: Entry, kind: AdapterParameter.Kind) -> AdapterParameterValue? {
        switch kind {
        case .text, .headerName, .choice:
            return string(entry, expected: kind.expectation).map { .text($0) }
        case .integer(let range):
            let bounds =
                range.upperBound == .max
                ? "an integer of at least \(range.lowerBound)"
                : "an integer from \(range.lowerBound) to \(range.upperBound)"
            return integer(entry, in: range, expected: bounds).map { .integer($0) }
        case .boolean:
            return bool(entry).map { .boolean($0) }
        case .duration:
            return duration(entry).map { .duration($0) }
        case .secret:
            return secretReference(entry).map { .secret($0.0) }
        case .fieldPath:
            return fieldPath(entry).map { .fieldPath($0) }
        }
    }
}
