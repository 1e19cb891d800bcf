import Foundation

/// Reads and writes a camera registry as an RFC 7946 GeoJSON FeatureCollection of points.
///
/// Each feature's `properties` hold the camera's fields in snake_case (`id`, `owner`, `kind`,
/// `place_type`, `heading_deg`, `fov_deg`, `range_m`, `stream`, `confidentiality`, `tags`).
/// Reading is all or nothing: the first bad feature is reported with its index and reason.
public enum CameraRegistryFile {
    /// Limits that keep a hostile file from exhausting memory.
    public static let maximumCameras = 1_000_000

    public static func read(contentsOf url: URL) throws(GeoError) -> [Camera] {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw GeoError(code: "registry_unreadable", message: "cannot read \(url.path): \(error.localizedDescription)", field: nil)
        }
        return try decode(data)
    }

    public static func decode(_ data: Data) throws(GeoError) -> [Camera] {
        let collection: FeatureCollection
        do {
            collection = try JSONDecoder().decode(FeatureCollection.self, from: data)
        } catch let error as DecodingError {
            throw GeoError(code: "registry_invalid", message: describe(error), field: path(of: error))
        } catch {
            throw GeoError(code: "registry_invalid", message: "\(error)", field: nil)
        }
        guard collection.type == "FeatureCollection" else {
            throw GeoError(code: "registry_invalid", message: "expected a FeatureCollection, got \(collection.type)", field: "type")
        }
        guard collection.features.count <= maximumCameras else {
            throw GeoError(code: "registry_too_large", message: "more than \(maximumCameras) cameras", field: "features")
        }
        var seen = Set<String>()
        var cameras: [Camera] = []
        cameras.reserveCapacity(collection.features.count)
        for (index, feature) in collection.features.enumerated() {
            let camera = try feature.camera(index: index)
            guard seen.insert(camera.id).inserted else {
                throw GeoError(code: "registry_duplicate_id", message: "camera id \(camera.id) appears twice", field: "features[\(index)].properties.id")
            }
            cameras.append(camera)
        }
        return cameras
    }

    /// Encodes cameras as a FeatureCollection with sorted keys, so the same cameras give the same bytes.
    public static func encode(_ cameras: [Camera], metadata: [String: String] = [:]) throws -> Data {
        let collection = FeatureCollection(
            type: "FeatureCollection",
            metadata: metadata.isEmpty ? nil : metadata,
            features: cameras.map(Feature.init(camera:)))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(collection)
    }

    private static func path(of error: DecodingError) -> String? {
        let context: DecodingError.Context? = switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .keyNotFound(_, let context), .dataCorrupted(let context): context
        @unknown default: nil
        }
        guard let context else { return nil }
        return context.codingPath.map { key in key.intValue.map { "[\($0)]" } ?? ".\(key.stringValue)" }
            .joined().trimmingCharacters(in: CharacterSet(charactersIn: "."))
    }

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, _): "missing member '\(key.stringValue)'"
        case .typeMismatch(let type, let context): "expected \(type): \(context.debugDescription)"
        case .valueNotFound(let type, _): "expected \(type), found null"
        case .dataCorrupted(let context): context.debugDescription
        @unknown default: "\(error)"
        }
    }
}

// MARK: - GeoJSON shapes

private struct FeatureCollection: Codable {
    var type: String
    /// Provenance and attribution carried with the file (foreign member, allowed by RFC 7946 §6.1).
    var metadata: [String: String]?
    var features: [Feature]
}

private struct Feature: Codable {
    struct PointGeometry: Codable {
        var type: String
        var coordinates: [Double]
    }

    struct Properties: Codable {
        var id: String
        var owner: String
        var kind: CameraKind
        var place_type: String
        var heading_deg: Double?
        var fov_deg: Double?
        var range_m: Double
        var stream: String
        var confidentiality: LocationConfidentiality
        var tags: [String]?
    }

    var type: String
    var geometry: PointGeometry
    var properties: Properties

    init(camera: Camera) {
        type = "Feature"
        geometry = PointGeometry(type: "Point", coordinates: [camera.position.lon, camera.position.lat])
        properties = Properties(
            id: camera.id, owner: camera.owner, kind: camera.kind, place_type: camera.placeType,
            heading_deg: camera.headingDegrees, fov_deg: camera.fieldOfViewDegrees, range_m: camera.rangeMeters,
            stream: camera.stream, confidentiality: camera.confidentiality, tags: camera.tags)
    }

    func camera(index: Int) throws(GeoError) -> Camera {
        let field = "features[\(index)]"
        guard type == "Feature" else {
            throw GeoError(code: "registry_invalid", message: "expected a Feature, got \(type)", field: "\(field).type")
        }
        guard geometry.type == "Point", geometry.coordinates.count >= 2 else {
            throw GeoError(code: "registry_invalid", message: "a camera is a Point with [lon, lat]", field: "\(field).geometry")
        }
        let position = try GeoPoint(lat: geometry.coordinates[1], lon: geometry.coordinates[0], field: "\(field).geometry.coordinates")
        let p = properties
        guard !p.id.isEmpty, p.id.count <= 64, p.id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            throw GeoError(code: "registry_invalid", message: "camera id must be 1-64 ASCII letters, digits, '-' or '_'", field: "\(field).properties.id")
        }
        if let heading = p.heading_deg, !(heading.isFinite && (0..<360).contains(heading)) {
            throw GeoError(code: "registry_invalid", message: "heading must be in 0..<360 degrees", field: "\(field).properties.heading_deg")
        }
        if let fov = p.fov_deg, !(fov.isFinite && fov > 0 && fov <= 360) {
            throw GeoError(code: "registry_invalid", message: "field of view must be in (0, 360] degrees", field: "\(field).properties.fov_deg")
        }
        guard p.range_m.isFinite, p.range_m > 0, p.range_m <= 5_000 else {
            throw GeoError(code: "registry_invalid", message: "range must be in (0, 5000] metres", field: "\(field).properties.range_m")
        }
        return Camera(
            id: p.id, owner: p.owner, kind: p.kind, placeType: p.place_type, position: position,
            headingDegrees: p.heading_deg, fieldOfViewDegrees: p.fov_deg, rangeMeters: p.range_m,
            stream: p.stream, confidentiality: p.confidentiality, tags: p.tags ?? [])
    }
}
