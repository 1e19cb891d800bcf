import Foundation

/// Reads and writes a camera registry as an RFC 7946 GeoJSON FeatureCollection of points.
///
/// Each feature's `properties` hold the camera's fields in snake_case (`id`, `owner`, `kind`,
/// `place_type`, `heading_deg`, `fov_deg`, `range_m`, `stream`, `confidentiality`, `tags`, and
/// `privacy_masks`: polygons of `[x, y]` picture fractions, left out when there are none).
/// Reading is all or nothing: ``read(contentsOf:)`` refuses a file with any bad feature;
/// ``validate(_:)`` lists every bad feature with its index and reason.
public enum CameraRegistryFile {
    /// Limits that keep a hostile file from exhausting memory.
    public static let maximumCameras = 1_000_000

    public static func read(contentsOf url: URL) throws(GeoError) -> [Camera] {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw GeoError(.registryUnreadable, message: "cannot read \(url.path): \(error.localizedDescription)", field: nil)
        }
        return try decode(data)
    }

    /// Decodes a registry, refusing it with the first problem found.
    public static func decode(_ data: Data) throws(GeoError) -> [Camera] {
        let (cameras, problems) = try validate(data)
        if let first = problems.first { throw first }
        return cameras
    }

    /// Decodes every feature it can and lists a problem for each one it cannot (with its index),
    /// including duplicate ids. Throws only when the file is not a FeatureCollection at all.
    public static func validate(_ data: Data) throws(GeoError) -> (cameras: [Camera], problems: [GeoError]) {
        let collection: FeatureCollection
        do {
            collection = try JSONDecoder().decode(FeatureCollection.self, from: data)
        } catch let error as DecodingError {
            throw GeoError(.registryInvalid, message: describe(error), field: path(of: error))
        } catch {
            throw GeoError(.registryInvalid, message: "\(error)", field: nil)
        }
        guard collection.type == "FeatureCollection" else {
            throw GeoError(.registryInvalid, message: "expected a FeatureCollection, got \(collection.type)", field: "type")
        }
        guard collection.features.count <= maximumCameras else {
            throw GeoError(.registryTooLarge, message: "more than \(maximumCameras) cameras", field: "features")
        }
        var cameras: [Camera] = []
        var problems: [GeoError] = []
        cameras.reserveCapacity(collection.features.count)
        for (index, feature) in collection.features.enumerated() {
            do throws(GeoError) {
                switch feature.decoded {
                case .success(let feature): cameras.append(try feature.camera(index: index))
                case .failure(let error): throw error
                }
            } catch {
                problems.append(error)
            }
        }
        problems += duplicateProblems(cameras) { "features[\($0)].properties.id" }
        return (cameras, problems)
    }

    /// One problem for each camera whose id an earlier camera already has.
    static func duplicateProblems(_ cameras: [Camera], field: (Int) -> String) -> [GeoError] {
        var seen = Set<String>()
        return cameras.enumerated().compactMap { index, camera in
            seen.insert(camera.id).inserted
                ? nil : GeoError(.registryDuplicateId, message: "camera id \(camera.id) appears twice", field: field(index))
        }
    }

    /// Encodes cameras as a FeatureCollection with sorted keys, so the same cameras give the same bytes.
    public static func encode(_ cameras: [Camera], metadata: [String: String] = [:]) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(Document(cameras, metadata: metadata))
    }

    /// Cameras as a registry FeatureCollection, to encode inside another document (the body of
    /// a `camera.update` request).
    public struct Document: Encodable {
        private let collection: FeatureCollection

        public init(_ cameras: [Camera], metadata: [String: String] = [:]) {
            collection = FeatureCollection(
                type: "FeatureCollection", metadata: metadata.isEmpty ? nil : metadata, features: cameras.map(Feature.init(camera:)))
        }

        public func encode(to encoder: any Encoder) throws {
            try collection.encode(to: encoder)
        }
    }

    static func path(of error: DecodingError) -> String? {
        let context: DecodingError.Context? = switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .keyNotFound(_, let context), .dataCorrupted(let context): context
        @unknown default: nil
        }
        guard let context else { return nil }
        return context.codingPath.map { key in key.intValue.map { "[\($0)]" } ?? ".\(key.stringValue)" }
            .joined().trimmingCharacters(in: CharacterSet(charactersIn: "."))
    }

    static func describe(_ error: DecodingError) -> String {
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

private struct FeatureCollection: Encodable, Decodable {
    var type: String
    /// Provenance and attribution carried with the file (foreign member, allowed by RFC 7946 §6.1).
    var metadata: [String: String]?
    var features: [Failable]

    init(type: String, metadata: [String: String]?, features: [Feature]) {
        self.type = type
        self.metadata = metadata
        self.features = features.map { Failable(decoded: .success($0)) }
    }
}

/// A feature that failed to decode keeps its error, so the others can still be checked.
private struct Failable: Codable {
    var decoded: Result<Feature, GeoError>

    init(decoded: Result<Feature, GeoError>) {
        self.decoded = decoded
    }

    init(from decoder: any Decoder) throws {
        do {
            decoded = .success(try Feature(from: decoder))
        } catch let error as DecodingError {
            let path = CameraRegistryFile.path(of: error)
            decoded = .failure(GeoError(.registryInvalid, message: CameraRegistryFile.describe(error), field: path))
        }
    }

    func encode(to encoder: any Encoder) throws {
        if case .success(let feature) = decoded { try feature.encode(to: encoder) }
    }
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
        var range_m: Double?
        var stream: String
        var confidentiality: LocationConfidentiality
        var tags: [String]?
        var privacy_masks: [PrivacyMask]?
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
            stream: camera.stream, confidentiality: camera.confidentiality, tags: camera.tags,
            privacy_masks: camera.privacyMasks.isEmpty ? nil : camera.privacyMasks)
    }

    func camera(index: Int) throws(GeoError) -> Camera {
        let field = "features[\(index)]"
        guard type == "Feature" else {
            throw GeoError(.registryInvalid, message: "expected a Feature, got \(type)", field: "\(field).type")
        }
        guard geometry.type == "Point", geometry.coordinates.count >= 2 else {
            throw GeoError(.registryInvalid, message: "a camera is a Point with [lon, lat]", field: "\(field).geometry")
        }
        let p = properties
        return try RegistryFeature(
            id: p.id, owner: p.owner, kind: p.kind, placeType: p.place_type, lat: geometry.coordinates[1], lon: geometry.coordinates[0],
            heading: p.heading_deg, fieldOfView: p.fov_deg, range: p.range_m, stream: p.stream, confidentiality: p.confidentiality,
            tags: p.tags ?? [], privacyMasks: p.privacy_masks ?? []
        ).camera(field: field, positionField: "\(field).geometry.coordinates", propertiesPrefix: "\(field).properties")
    }
}

/// One registry entry before validation, whatever file it came from.
struct RegistryFeature {
    var id: String
    var owner: String
    var kind: CameraKind
    var placeType: String
    var lat: Double
    var lon: Double
    var heading: Double?
    var fieldOfView: Double?
    var range: Double?
    var stream: String
    var confidentiality: LocationConfidentiality
    var tags: [String]
    var privacyMasks: [PrivacyMask] = []

    /// Checks every field; a problem names `propertiesPrefix.column` (or `positionField`).
    func camera(field: String, positionField: String? = nil, propertiesPrefix: String? = nil) throws(GeoError) -> Camera {
        let prefix = propertiesPrefix ?? field
        let position = try GeoPoint(lat: lat, lon: lon, field: positionField ?? "\(field).lat")
        guard !id.isEmpty, id.count <= 64, id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            throw GeoError(.registryInvalid, message: "camera id must be 1-64 ASCII letters, digits, '-' or '_'", field: "\(prefix).id")
        }
        guard !owner.isEmpty else { throw GeoError(.registryInvalid, message: "owner is required", field: "\(prefix).owner") }
        if let heading, !(heading.isFinite && (0..<360).contains(heading)) {
            throw GeoError(.registryInvalid, message: "heading must be in 0..<360 degrees", field: "\(prefix).heading_deg")
        }
        if let fieldOfView, !(fieldOfView.isFinite && fieldOfView > 0 && fieldOfView <= 360) {
            throw GeoError(.registryInvalid, message: "field of view must be in (0, 360] degrees", field: "\(prefix).fov_deg")
        }
        let range = self.range ?? Camera.defaultRangeMeters
        guard range.isFinite, range > 0, range <= 5_000 else {
            throw GeoError(.registryInvalid, message: "range must be in (0, 5000] metres", field: "\(prefix).range_m")
        }
        let validMask: (PrivacyMask) -> Bool = { mask in
            mask.count >= 3 && mask.allSatisfy { $0.count == 2 && $0.allSatisfy { $0.isFinite && (0...1).contains($0) } }
        }
        guard privacyMasks.count <= PrivacyMaskLimits.masks, privacyMasks.reduce(0, { $0 + $1.count }) <= PrivacyMaskLimits.points,
              privacyMasks.allSatisfy(validMask)
        else {
            throw GeoError(
                .registryInvalid,
                message: "privacy masks are at most \(PrivacyMaskLimits.masks) polygons of 3 or more [x, y] points, "
                    + "\(PrivacyMaskLimits.points) points in all, each in 0...1 of the picture",
                field: "\(prefix).privacy_masks")
        }
        return Camera(
            id: id, owner: owner, kind: kind, placeType: placeType, position: position, headingDegrees: heading,
            fieldOfViewDegrees: fieldOfView, rangeMeters: range, stream: stream, confidentiality: confidentiality, tags: tags,
            privacyMasks: privacyMasks.map(PrivacyMaskLimits.rounded))
    }
}
