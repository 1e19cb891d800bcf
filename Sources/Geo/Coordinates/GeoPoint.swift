import Foundation

/// A WGS84 position (EPSG:4326). Latitude and longitude are in degrees.
///
/// Every `GeoPoint` is finite and inside the WGS84 ranges; whether it lies inside a
/// deployment's metric CRS is checked by ``Projection``.
public struct GeoPoint: Sendable, Hashable, Codable, CustomStringConvertible {
    public let lat: Double
    public let lon: Double

    /// - Throws: ``GeoError`` `coordinate_invalid` for NaN or infinite values,
    ///   `coordinate_out_of_range` outside ±90° latitude or ±180° longitude.
    /// - Parameter field: names the input in an error; only evaluated when there is one.
    public init(lat: Double, lon: Double, field: @autoclosure () -> String = "position") throws(GeoError) {
        guard lat.isFinite, lon.isFinite else {
            throw GeoError(.coordinateInvalid, message: "latitude and longitude must be finite numbers", field: field())
        }
        guard (-90...90).contains(lat) else {
            throw GeoError(.coordinateOutOfRange, message: "latitude \(lat) is outside -90...90", field: field())
        }
        guard (-180...180).contains(lon) else {
            throw GeoError(.coordinateOutOfRange, message: "longitude \(lon) is outside -180...180", field: field())
        }
        self.lat = lat
        self.lon = lon
    }

    /// This point with latitude and longitude rounded to 7 decimals (about 1 cm), as the registry stores them.
    public func roundedToCentimetre() -> GeoPoint {
        // Rounding a valid coordinate keeps it inside the WGS84 ranges.
        try! GeoPoint(lat: (lat * 1e7).rounded() / 1e7, lon: (lon * 1e7).rounded() / 1e7)
    }

    /// Parses `"LAT,LON"` as typed by an operator, for example `50.8467,4.3525`.
    public init(parsing text: String, field: String = "position") throws(GeoError) {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2, let lat = Double(parts[0]), let lon = Double(parts[1]) else {
            throw GeoError(.coordinateInvalid, message: "expected LAT,LON in decimal degrees, got '\(text)'", field: field)
        }
        try self.init(lat: lat, lon: lon, field: field)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let lat = try container.decode(Double.self, forKey: .lat)
        let lon = try container.decode(Double.self, forKey: .lon)
        do {
            try self.init(lat: lat, lon: lon)
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description, underlyingError: error))
        }
    }

    public var description: String { "\(lat),\(lon)" }
}

