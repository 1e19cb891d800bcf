/// How a march window is drawn. Distances are metres along or across the route; every field
/// has a default, and JSON uses snake_case (`ahead_meters`, …).
public struct MarchConfiguration: Sendable, Codable, Equatable {
    /// Width of the corridor around the route in which cameras count as "along" it.
    public var corridorWidthMeters = 60.0
    /// How far ahead of the head to look…
    public var aheadMeters = 300.0
    /// …or, when set, this many seconds at the head's observed speed (never less than `aheadMeters`).
    public var aheadSeconds: Double?
    /// How far behind the tail to look (stragglers, damage, dispersal).
    public var behindMeters = 200.0
    /// Hysteresis: a camera enters at the window's edge and leaves only beyond edge + margin…
    public var marginMeters = 50.0
    /// …or after it has stayed between the edge and the margin for this long.
    public var dwellSeconds = 30.0
    /// Side streets: cameras within this distance of a junction inside the window, off the corridor.
    public var sideStreetRadiusMeters = 80.0
    /// The arrival area is shown once the head is this close to the end of the route…
    public var arrivalTriggerMeters = 500.0
    /// …with the cameras within this distance of the end.
    public var arrivalRadiusMeters = 150.0
    /// A head farther than this from the route has left it.
    public var offRouteToleranceMeters = 75.0
    /// Off the route, the cameras within this distance of the head are shown instead.
    public var fallbackRadiusMeters = 250.0
    /// At most this many cameras (a video wall), first of the ranking.
    public var limit: Int?

    public init() {}

    private enum CodingKeys: String, CodingKey {
        case corridorWidthMeters, aheadMeters, aheadSeconds, behindMeters, marginMeters, dwellSeconds, sideStreetRadiusMeters
        case arrivalTriggerMeters, arrivalRadiusMeters, offRouteToleranceMeters, fallbackRadiusMeters, limit
    }

    /// Every member is optional in JSON; a missing one keeps its default.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func value(_ key: CodingKeys, _ fallback: Double) throws -> Double { try container.decodeIfPresent(Double.self, forKey: key) ?? fallback }
        let defaults = MarchConfiguration()
        corridorWidthMeters = try value(.corridorWidthMeters, defaults.corridorWidthMeters)
        aheadMeters = try value(.aheadMeters, defaults.aheadMeters)
        aheadSeconds = try container.decodeIfPresent(Double.self, forKey: .aheadSeconds)
        behindMeters = try value(.behindMeters, defaults.behindMeters)
        marginMeters = try value(.marginMeters, defaults.marginMeters)
        dwellSeconds = try value(.dwellSeconds, defaults.dwellSeconds)
        sideStreetRadiusMeters = try value(.sideStreetRadiusMeters, defaults.sideStreetRadiusMeters)
        arrivalTriggerMeters = try value(.arrivalTriggerMeters, defaults.arrivalTriggerMeters)
        arrivalRadiusMeters = try value(.arrivalRadiusMeters, defaults.arrivalRadiusMeters)
        offRouteToleranceMeters = try value(.offRouteToleranceMeters, defaults.offRouteToleranceMeters)
        fallbackRadiusMeters = try value(.fallbackRadiusMeters, defaults.fallbackRadiusMeters)
        limit = try container.decodeIfPresent(Int.self, forKey: .limit)
    }

    /// Checks every field; the first bad one is reported with its name.
    public func validate() throws(GeoError) {
        let distances: [(String, Double)] = [
            ("corridor_width_meters", corridorWidthMeters), ("ahead_meters", aheadMeters), ("behind_meters", behindMeters),
            ("margin_meters", marginMeters), ("side_street_radius_meters", sideStreetRadiusMeters),
            ("arrival_trigger_meters", arrivalTriggerMeters), ("arrival_radius_meters", arrivalRadiusMeters),
            ("off_route_tolerance_meters", offRouteToleranceMeters), ("fallback_radius_meters", fallbackRadiusMeters),
        ]
        for (field, value) in distances where !(value.isFinite && value >= 0 && value <= CameraIndex.maximumRadiusMeters) {
            throw GeoError(.marchInvalid, message: "\(field) must be 0 to \(Int(CameraIndex.maximumRadiusMeters)) metres", field: field)
        }
        guard corridorWidthMeters > 0, fallbackRadiusMeters > 0 else {
            throw GeoError(.marchInvalid, message: "the corridor width and fallback radius must be positive", field: "corridor_width_meters")
        }
        for (field, value) in [("ahead_seconds", aheadSeconds ?? 0), ("dwell_seconds", dwellSeconds)] where !(value.isFinite && value >= 0 && value <= 3_600) {
            throw GeoError(.marchInvalid, message: "\(field) must be 0 to 3600 seconds", field: field)
        }
        if let limit, !(1...10_000).contains(limit) {
            throw GeoError(.limitInvalid, message: "limit must be 1 to 10000", field: "limit")
        }
    }
}

/// Where a march stands: a position to snap onto the route, or a distance along it.
public enum MarchPosition: Sendable, Equatable {
    case point(GeoPoint)
    case measure(Double)
}

/// The part of the march window a camera belongs to, in display order.
public enum MarchSection: String, Sendable, Codable, CaseIterable, Comparable {
    case ahead, occupied, behind
    case sideStreet = "side_street"
    case arrival
    /// The head left the route: the cameras around it.
    case fallback

    public static func < (a: MarchSection, b: MarchSection) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// A camera of the march window.
public struct MarchCamera: Sendable, Equatable, Codable {
    public var camera: Camera
    public var section: MarchSection
    /// Distance along the route of the camera's nearest point on it (corridor cameras), or of its junction.
    public var alongMeters: Double?
    /// Distance from the route (corridor), the junction, the end of the route, or the head (fallback).
    public var distanceMeters: Double
}

/// The outcome of one head/tail update: the window, what changed since the last one, and events.
public struct MarchUpdate: Sendable {
    public var headMeters: Double
    public var tailMeters: Double
    /// Where the head is (as given, not snapped: off the route it is where the march went).
    public var headPosition: GeoPoint
    public var routeLengthMeters: Double
    /// Smoothed head speed along the route in m/s, from successive head fixes (nil until two fixes).
    public var headSpeed: Double?
    /// How far the head is from the route, in metres.
    public var headOffsetMeters: Double
    public var onRoute: Bool
    /// The window, ranked: by section (ahead, occupied, behind, side streets, arrival), then
    /// ahead nearest the head first, occupied from head to tail, behind from the tail back,
    /// side streets by junction from the head back, arrival nearest the end first; ties by id.
    public var cameras: [MarchCamera]
    public var added: [MarchCamera]
    public var removed: [String]
    /// Cameras that stayed but moved to another section.
    public var relabelled: [MarchCamera]
    /// `head_left_route`, `head_back_on_route`, `arrival_near`.
    public var events: [String]
}
