/// What a camera is mounted for; selection filters and owners' grants refer to it.
public enum CameraKind: String, Sendable, Codable, CaseIterable {
    case street, metro, tunnel, estate, speed
}

/// Whether an agency without a grant may learn where a camera is.
public enum LocationConfidentiality: String, Sendable, Codable {
    case `public`, confidential
}

/// A permanent privacy mask: a polygon in image coordinates, each point `[x, y]` as fractions of
/// the picture's width and height from its top-left corner (so it survives a resolution change).
public typealias PrivacyMask = [[Double]]

/// How large a camera's privacy masks may be, and how finely their points are kept.
public enum PrivacyMaskLimits {
    /// Polygons per camera.
    public static let masks = 32
    /// Points of all of a camera's masks together. A relay node's playback ticket carries the
    /// masks in a link's address, which FFmpeg's players read up to 4,096 characters: packed,
    /// 256 points take about 1,450 of them.
    public static let points = 256
    /// Points are kept to 1/10,000 of the picture (under half a pixel at 4K): enough for any
    /// mask, and what lets the ticket pack each number in two bytes.
    public static let resolution = 10_000.0

    /// `mask` with each fraction rounded to ``resolution``.
    public static func rounded(_ mask: PrivacyMask) -> PrivacyMask {
        mask.map { point in point.map { ($0 * resolution).rounded() / resolution } }
    }
}

/// One camera of the registry, as the geospatial engine and the incident store see it.
///
/// Immutable and shared by reference: a selection hands out the registry's own camera
/// objects (one retain each) rather than copies of their strings.
public final class Camera: Sendable, Hashable, Codable {
    /// The range given to a camera whose registry entry names none.
    public static let defaultRangeMeters = 50.0

    /// Stable identifier, for example `stib-8021-03` or `pz5339-street-0042`.
    public let id: String
    /// The owner's identifier (`pz-5339`, `stib`, `bruxelles-mobilite`, …).
    public let owner: String
    public let kind: CameraKind
    /// Where it hangs: `platform`, `access`, `metro-tunnel`, `road`, `square`, `road-tunnel`, `estate`, …
    public let placeType: String
    public let position: GeoPoint
    /// Degrees clockwise from true north; `nil` for an omnidirectional (dome) camera.
    public let headingDegrees: Double?
    /// Horizontal field-of-view angle in degrees; `nil` for an omnidirectional camera.
    public let fieldOfViewDegrees: Double?
    /// How far the camera usefully sees, in metres.
    public let rangeMeters: Double
    /// Where the relay pulls the stream from (a placeholder URL until real sources are set).
    public let stream: String
    public let confidentiality: LocationConfidentiality
    public let tags: [String]
    /// Parts of the picture that must never be shown (windows, private gardens), applied before any output.
    public let privacyMasks: [PrivacyMask]

    public init(
        id: String, owner: String, kind: CameraKind, placeType: String, position: GeoPoint,
        headingDegrees: Double?, fieldOfViewDegrees: Double?, rangeMeters: Double,
        stream: String, confidentiality: LocationConfidentiality, tags: [String], privacyMasks: [PrivacyMask] = []
    ) {
        self.privacyMasks = privacyMasks
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

    /// This camera with another stream URL (exports show it without credentials).
    public func withStream(_ stream: String) -> Camera {
        Camera(
            id: id, owner: owner, kind: kind, placeType: placeType, position: position, headingDegrees: headingDegrees,
            fieldOfViewDegrees: fieldOfViewDegrees, rangeMeters: rangeMeters, stream: stream, confidentiality: confidentiality,
            tags: tags, privacyMasks: privacyMasks)
    }

    /// Two cameras are equal when every field is.
    public static func == (a: Camera, b: Camera) -> Bool {
        a === b
            || (a.id == b.id && a.owner == b.owner && a.kind == b.kind && a.placeType == b.placeType && a.position == b.position
                && a.headingDegrees == b.headingDegrees && a.fieldOfViewDegrees == b.fieldOfViewDegrees && a.rangeMeters == b.rangeMeters
                && a.stream == b.stream && a.confidentiality == b.confidentiality && a.tags == b.tags
                && a.privacyMasks == b.privacyMasks)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(id)
    }
}
