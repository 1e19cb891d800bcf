import Foundation
@testable import Geo

/// The repository's fixtures folder, found from this file's path.
let fixturesFolder = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("fixtures")

/// Distance on the WGS84 ellipsoid from its local radii of curvature at the mid-latitude
/// (meridional M and prime-vertical N): an independent check on PROJ's planar distances,
/// accurate to about a millionth over a few kilometres. (A sphere is not good enough: at
/// Brussels, N exceeds the mean radius by 0.3 %.)
func ellipsoidalMeters(_ a: GeoPoint, _ b: GeoPoint) -> Double {
    let semiMajor = 6_378_137.0
    let eccentricitySquared = 0.006_694_379_990_14
    let latitude = (a.lat + b.lat) / 2 * .pi / 180
    let w = (1 - eccentricitySquared * sin(latitude) * sin(latitude)).squareRoot()
    let meridional = semiMajor * (1 - eccentricitySquared) / (w * w * w)
    let primeVertical = semiMajor / w
    let north = (b.lat - a.lat) * .pi / 180 * meridional
    let east = (b.lon - a.lon) * .pi / 180 * primeVertical * cos(latitude)
    return (north * north + east * east).squareRoot()
}

func camera(_ id: String, _ lat: Double, _ lon: Double, confidentiality: LocationConfidentiality = .public) throws -> Camera {
    Camera(
        id: id, owner: "pz-5339", kind: .street, placeType: "road", position: try GeoPoint(lat: lat, lon: lon),
        headingDegrees: nil, fieldOfViewDegrees: nil, rangeMeters: 100, stream: "sim://\(id)", confidentiality: confidentiality, tags: [])
}

