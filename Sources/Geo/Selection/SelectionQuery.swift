/// Which cameras a caller wants, as the CLI's batch lines and the bus carry it.
///
/// JSON form (snake_case): `{"type": "radius", "at": {"lat": …, "lon": …}, "meters": 300}`,
/// `{"type": "nearest", "at": …, "count": 4, "max_meters": 1000}`, `{"type": "sees", "at": …}`,
/// `{"type": "area", "geometry": <GeoJSON Polygon or MultiPolygon>}`,
/// `{"type": "route", "geometry": <GeoJSON LineString>, "width_meters": 60}`, each with an
/// optional `"filter"`.
public struct SelectionQuery: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable {
        case radius, nearest, sees, area, route
    }

    public var type: Kind
    public var at: GeoPoint?
    public var meters: Double?
    public var count: Int?
    public var maxMeters: Double?
    public var geometry: GeoJSONGeometry?
    public var widthMeters: Double?
    public var filter: SelectionFilter?

    public init(
        type: Kind, at: GeoPoint? = nil, meters: Double? = nil, count: Int? = nil, maxMeters: Double? = nil,
        geometry: GeoJSONGeometry? = nil, widthMeters: Double? = nil, filter: SelectionFilter? = nil
    ) {
        self.type = type
        self.at = at
        self.meters = meters
        self.count = count
        self.maxMeters = maxMeters
        self.geometry = geometry
        self.widthMeters = widthMeters
        self.filter = filter
    }
}

/// Restricts a selection: every listed owner, kind and tag list narrows it. A camera passes
/// when its owner is one of `owners`, its kind one of `kinds`, and it carries every tag of
/// `tags`. `limit` caps the ranked answer (the size of a video wall).
public struct SelectionFilter: Sendable, Codable, Equatable {
    public var owners: [String]?
    public var kinds: [CameraKind]?
    public var tags: [String]?
    public var limit: Int?

    public init(owners: [String]? = nil, kinds: [CameraKind]? = nil, tags: [String]? = nil, limit: Int? = nil) {
        self.owners = owners
        self.kinds = kinds
        self.tags = tags
        self.limit = limit
    }

    /// `limit_invalid` unless the limit (if any) is 1 to 10,000.
    public func validate() throws(GeoError) {
        if let limit, limit < 1 || limit > 10_000 {
            throw GeoError(.limitInvalid, message: "limit must be 1 to 10000", field: "filter.limit")
        }
    }

    func admits(_ camera: Camera) -> Bool {
        if let owners, !owners.contains(camera.owner) { return false }
        if let kinds, !kinds.contains(camera.kind) { return false }
        if let tags, !tags.allSatisfy(camera.tags.contains) { return false }
        return true
    }
}
