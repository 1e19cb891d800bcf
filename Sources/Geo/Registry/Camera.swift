/// What a camera is mounted for; selection filters and owners' grants refer to it.
public enum CameraKind: String, Sendable, Codable, CaseIterable {
    case street, metro, tunnel, estate, speed
}

/// Whether an agency without a grant may learn where a camera is.
public enum LocationConfidentiality: String, Sendable, Codable {
    case `public`, confidential
}

/// One camera of the registry, as the geospatial engine and the incident store see it.
public struct Camera: Sendable, Hashable, Codable {
    /// The range given to a camera whose registry entry names none.
    public static let defaultRangeMeters = 50.0

    /// Stable identifier, for example `stib-8021-03` or `pz5339-street-0042`.
    public var id: String
    /// The owner's identifier (`pz-5339`, `stib`, `bruxelles-mobilite`, …).
    public var owner: String
    public var kind: CameraKind
    /// Where it hangs: `platform`, `access`, `metro-tunnel`, `road`, `square`, `road-tunnel`, `estate`, …
    public var placeType: String
    public var position: GeoPoint
    /// Degrees clockwise from north; `nil` for an omnidirectional (dome) camera.
    public var headingDegrees: Double?
    /// Horizontal field-of-view angle in degrees; `nil` for an omnidirectional camera.
    public var fieldOfViewDegrees: Double?
    /// How far the camera usefully sees, in metres.
    public var rangeMeters: Double
    /// Where the relay pulls the stream from (a placeholder URL until real sources are set).
    public var stream: String
    public var confidentiality: LocationConfidentiality
    public var tags: [String]

    public init(
        id: String, owner: String, kind: CameraKind, placeType: String, position: GeoPoint,
        headingDegrees: Double?, fieldOfViewDegrees: Double?, rangeMeters: Double,
        stream: String, confidentiality: LocationConfidentiality, tags: [String]
    ) {
        self.id = id
        self.owner = owner
        self.kind = kind
        self.placeType = placeType
        self.position = position
        self.headingDegrees = headingDegrees
        self.fieldOfViewDegrees = fieldOfViewDegrees
        self.rangeMeters = rangeMeters
        self.stream = stream
        self.confidentiality = confidentiality
        self.tags = tags
    }
}
