import Geo

/// An error an incident operation returns to its caller: a stable code, a message, the field at fault.
public struct IncidentError: Error, Sendable, Equatable, CustomStringConvertible {
    public let code: String
    public let message: String
    public let field: String?

    public init(code: String, message: String, field: String? = nil) {
        self.code = code
        self.message = message
        self.field = field
    }

    public init(_ error: GeoError) {
        self.init(code: error.code, message: error.message, field: error.field)
    }

    public var description: String { field.map { "\(code): \($0): \(message)" } ?? "\(code): \(message)" }

    static func notFound(_ id: Int64) -> IncidentError {
        IncidentError(code: "incident_not_found", message: "there is no incident \(id)", field: "incident")
    }
}
