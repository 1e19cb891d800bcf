/// A vocabulary of stable error codes: an enum whose raw values are the codes as written on the
/// wire and on the command line (`coordinate_out_of_range`). A code never changes meaning;
/// each is explained in `docs/protocol.md`.
public protocol ErrorCode: RawRepresentable, CaseIterable, Sendable, Hashable where RawValue == String {}

/// An error with a stable code, a message for people, and the input field at fault.
public protocol StableError: Error, CustomStringConvertible {
    /// The code as written.
    var code: String { get }
    var message: String { get }
    var field: String? { get }
}

/// The error of one boundary of Vigil (the engine's `GeoError`, the incidents' `IncidentError`,
/// the media path's `MediaError`, the command line's `CommandFailure`): made from a case of its
/// vocabulary `Code`, carrying the code as written.
public struct CodedError<Code: ErrorCode>: StableError, Sendable, Equatable {
    public let code: String
    public let message: String
    /// The input field at fault (`at`, `radius`, `features[12].geometry`), when there is one.
    public let field: String?

    public init(_ code: Code, message: String, field: String? = nil) {
        self.init(passing: code.rawValue, message: message, field: field)
    }

    /// An error that passes on a code already written: one of another vocabulary beneath this
    /// boundary (the engine's, under an incident), or a refusal the decision function made from
    /// this one.
    public init(passing code: String, message: String, field: String? = nil) {
        self.code = code
        self.message = message
        self.field = field
    }

    /// The same error, passed on from another boundary's.
    public init(_ error: some StableError) {
        self.init(passing: error.code, message: error.message, field: error.field)
    }

    /// The same error, blamed on another field (a file's problem, placed in a request's body).
    public func at(field: String?) -> CodedError {
        CodedError(passing: code, message: message, field: field)
    }

    public var description: String {
        field.map { "\(code): \($0): \(message)" } ?? "\(code): \(message)"
    }
}
