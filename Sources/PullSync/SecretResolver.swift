import Foundation
import PullSyncKernel
public import PartnerAdapterKit

/// Why a secret reference did not resolve. Names the reference, never a value.
public struct SecretResolutionError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The reference that failed, e.g. `env:PARTNER_TOKEN`.
    public var reference: SecretReference
    /// What is wrong, e.g. `is not set`.
    public var problem: String

    /// Creates the error for `reference`, saying what is wrong with it.
    public init(reference: SecretReference, problem: String) {
        self.reference = reference
        self.problem = problem
    }

    public var description: String { "secret \(reference) \(problem)" }
}

/// Turns secret references into values.
public protocol SecretResolver: Sendable {
    /// The value `reference` names; throws, naming the reference (never a value), when it has none.
    func resolve(_ reference: SecretReference) throws(SecretResolutionError) -> Secret
}

/// Resolves `env:NAME` from the process environment (or a given one) and `file:PATH` by
/// reading the file (at most 64 KiB, trailing newlines removed; relative paths against
/// `baseDirectory`).
public struct EnvironmentSecretResolver: SecretResolver {
    private let environment: [String: String]
    private let baseDirectory: String?

    /// - Parameters:
    ///   - environment: the variables `env:` references read; `nil` means the process environment.
    ///   - baseDirectory: where relative `file:` paths start; `nil` means the working directory.
    public init(environment: [String: String]? = nil, baseDirectory: String? = nil) {
        self.environment = environment ?? ProcessInfo.processInfo.environment
        self.baseDirectory = baseDirectory
    }

    public func resolve(_ reference: SecretReference) throws(SecretResolutionError) -> Secret {
        switch reference {
        case .environment(let name):
            guard let value = environment[name] else {
                throw SecretResolutionError(reference: reference, problem: "is not set")
            }
            guard !value.isEmpty else { throw SecretResolutionError(reference: reference, problem: "is empty") }
            return Secret(value)
        case .file(let path):
            let fullPath = path.hasPrefix("/") || baseDirectory == nil ? path : baseDirectory! + "/" + path
            guard let handle = FileHandle(forReadingAtPath: fullPath) else {
                throw SecretResolutionError(reference: reference, problem: "cannot be read")
            }
            defer { try? handle.close() }
            let limit = 64 * 1024
            guard let data = try? handle.read(upToCount: limit + 1) else {
                throw SecretResolutionError(reference: reference, problem: "is empty")
            }
            guard data.count <= limit else {
                throw SecretResolutionError(reference: reference, problem: "is larger than 64 KiB")
            }
            guard var value = String(data: data, encoding: .utf8) else {
                throw SecretResolutionError(reference: reference, problem: "is not UTF-8 text")
            }
            while let last = value.last, last.isNewline { value.removeLast() }
            guard !value.isEmpty else { throw SecretResolutionError(reference: reference, problem: "is empty") }
            return Secret(value)
        }
    }
}
