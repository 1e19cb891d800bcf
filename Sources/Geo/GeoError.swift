import ErrorVocabulary

/// An error a caller of the geospatial engine can show a user: a stable code, a message, the field at fault.
public typealias GeoError = CodedError<GeoErrorCode>

/// The engine's error codes: coordinates, radii and counts, areas, routes, registry files.
public enum GeoErrorCode: String, ErrorCode {
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
