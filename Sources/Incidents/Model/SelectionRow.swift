import Geo

/// One camera of an incident's selection as it is stored: why it was picked, how far, and for a
/// march its section and measure along the route.
struct SelectionRow: Sendable {
    var camera: Camera
    var distanceMeters: Double
    var reason: String
    var section: String?
    var alongMeters: Double?

    init(_ match: CameraMatch) {
        camera = match.camera
        distanceMeters = match.distanceMeters
        reason = match.reason
        alongMeters = match.alongMeters
    }

    init(_ march: MarchCamera) {
        camera = march.camera
        distanceMeters = march.distanceMeters
        reason = "march_window"
        section = march.section.rawValue
        alongMeters = march.alongMeters
    }

    /// As agencies receive it (the confidentiality rule applied).
    var selected: SelectedCamera {
        SelectedCamera(
            id: camera.id, owner: camera.owner, kind: camera.kind, placeType: camera.placeType, position: camera.position,
            confidentiality: camera.confidentiality, distanceMeters: distanceMeters, reason: reason, section: section, alongMeters: alongMeters)
    }
}
