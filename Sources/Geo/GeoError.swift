/// An error a caller of the geospatial engine can show a user: a stable code, a message, the field at fault.
public struct GeoError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The engine's error codes. Each is explained in `docs/protocol.md`; a code never changes meaning.
    public enum Code: String, CaseIterable, Sendable {
        case areaEmpty = "area_empty"
        case areaInvalid = "area_invalid"
        case areaTooLarge = "area_too_large"
        case areaUnclosed = "area_unclosed"
        case cameraExists = "camera_exists"
        case coordinateInvalid = "coordinate_invalid"
        case coordinateOutOfRange = "coordinate_out_of_range"
        case coordinateOutsideCrs = "coordinate_outside_crs"
        case countInvalid = "count_invalid"
        case geometryInvalid = "geometry_invalid"
        case geometryUnreadable = "geometry_unreadable"
        case geosFailure = "geos_failure"
        case limitInvalid = "limit_invalid"
        case marchInvalid = "march_invalid"
        case maskInvalid = "mask_invalid"
        case ownerUnknown = "owner_unknown"
        case queryIncomplete = "query_incomplete"
        case queryInvalid = "query_invalid"
        case radiusInvalid = "radius_invalid"
        case registryDuplicateId = "registry_duplicate_id"
        case registryInvalid = "registry_invalid"
        case registryTooLarge = "registry_too_large"
        case registryUnreadable = "registry_unreadable"
        case routeInvalid = "route_invalid"
        case routeTooLong = "route_too_long"
        case routeZeroLength = "route_zero_length"
    }

    /// The code, as it is written on the wire and on the command line (`coordinate_out_of_range`).
    public let code: String
    public let message: String
    /// The input field at fault (`at`, `radius`, `features[12].geometry`), when there is one.
    public let field: String?

    public init(_ code: Code, message: String, field: String? = nil) {
        self.init(rendered: code.rawValue, message: message, field: field)
    }

    private init(rendered code: String, message: String, field: String?) {
        self.code = code
        self.message = message
        self.field = field
    }

    /// The same error, blamed on another field (a file's problem, placed in a request's body).
    public func at(field: String?) -> GeoError {
        GeoError(rendered: code, message: message, field: field)
    }

    public var description: String {
        field.map { "\(code): \($0): \(message)" } ?? "\(code): \(message)"
    }
}
