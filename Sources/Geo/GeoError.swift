/// An error a caller of the geospatial engine can show a user: a stable code, a message, the field at fault.
public struct GeoError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable, machine-readable code such as `coordinate_out_of_range`. Codes never change meaning.
    public let code: String
    public let message: String
    /// The input field at fault (`at`, `radius`, `features[12].geometry`), when there is one.
    public let field: String?

    public init(code: String, message: String, field: String? = nil) {
        self.code = code
        self.message = message
        self.field = field
    }

    public var description: String {
        field.map { "\(code): \($0): \(message)" } ?? "\(code): \(message)"
    }
}
