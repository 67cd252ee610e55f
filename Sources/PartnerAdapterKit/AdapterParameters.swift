public import PullSyncKernel

/// A compiled adapter's parameters, checked against its ``AdapterDescriptor``: every name is
/// declared, every required one is there, every value has its parameter's kind and passes its
/// rules, and defaults are filled in. An adapter can rely on what it declared.
public struct AdapterParameters: Sendable, Hashable {
    /// Every parameter that has a value (given or defaulted), by name.
    public let values: [String: AdapterParameterValue]
    /// The secret references, in the descriptor's parameter order.
    public let secretReferences: [SecretReference]

    /// Checks `values` against `descriptor`; throws every problem in one error.
    public init(_ values: [String: AdapterParameterValue], for descriptor: AdapterDescriptor) throws(AdapterError) {
        var problems: [String] = []
        for name in values.keys.sorted() where descriptor.parameter(named: name) == nil {
            problems.append("unknown parameter '\(name)' for adapter '\(descriptor.name)'")
        }
        var checked: [String: AdapterParameterValue] = [:]
        var references: [SecretReference] = []
        for parameter in descriptor.parameters {
            guard let value = values[parameter.name] else {
                switch parameter.requirement {
                case .required: problems.append("adapter '\(descriptor.name)' needs parameter '\(parameter.name)'")
                case .optional: break
                case .defaulted(let value): checked[parameter.name] = value
                }
                continue
            }
            if let problem = parameter.problem(with: value) {
                problems.append("parameter '\(parameter.name)' \(problem)")
                continue
            }
            checked[parameter.name] = value
            if case .secret(let reference) = value { references.append(reference) }
        }
        guard problems.isEmpty else { throw AdapterError(problems.joined(separator: "; ")) }
        self.values = checked
        self.secretReferences = references
    }

    /// A `text`, `headerName` or `choice` parameter.
    public func text(_ name: String) -> String? {
        if case .text(let value)? = values[name] { value } else { nil }
    }

    /// An `integer` parameter.
    public func integer(_ name: String) -> Int? {
        if case .integer(let value)? = values[name] { value } else { nil }
    }

    /// A `boolean` parameter.
    public func boolean(_ name: String) -> Bool? {
        if case .boolean(let value)? = values[name] { value } else { nil }
    }

    /// A `duration` parameter.
    public func duration(_ name: String) -> Duration? {
        if case .duration(let value)? = values[name] { value } else { nil }
    }

    /// A `secret` parameter's reference (its value is in ``CompiledAdapterConfiguration``).
    public func secretReference(_ name: String) -> SecretReference? {
        if case .secret(let value)? = values[name] { value } else { nil }
    }

    /// A `fieldPath` parameter, as its object keys (`data.user.id` is `["data", "user", "id"]`).
    public func fieldPath(_ name: String) -> [String]? {
        if case .fieldPath(let value)? = values[name] { value } else { nil }
    }
}
