import Foundation
import Geo

/// Read access to the real source files under `fixtures/sources` (GeoJSON and CSV).
public struct SourceData {
    let directory: URL

    public init(directory: URL) {
        self.directory = directory
    }

    struct Feature {
        let properties: [String: Any]
        let geometry: [String: Any]

        func string(_ key: String) -> String? {
            switch properties[key] {
            case let value as String: value
            case let value as NSNumber: value.stringValue
            default: nil
            }
        }

        /// The feature's geometry serialised back to JSON text, for GEOS's GeoJSON reader.
        func geometryJSON() throws -> String {
            String(decoding: try JSONSerialization.data(withJSONObject: geometry, options: [.sortedKeys]), as: UTF8.self)
        }

        /// The line parts of a LineString or MultiLineString, as WGS84 points.
        func lines() throws -> [[GeoPoint]] {
            switch geometry["type"] as? String {
            case "LineString": [try Self.points(geometry["coordinates"])]
            case "MultiLineString": try (geometry["coordinates"] as? [Any] ?? []).map(Self.points)
            default: []
            }
        }

        /// The position of a Point feature.
        func point() throws -> GeoPoint? {
            guard geometry["type"] as? String == "Point" else { return nil }
            return try Self.points([geometry["coordinates"] as Any]).first
        }

        private static func points(_ raw: Any?) throws -> [GeoPoint] {
            try (raw as? [[Double]] ?? []).map { pair in
                try GeoPoint(lat: pair[1], lon: pair[0])
            }
        }
    }

    func features(_ file: String) throws -> [Feature] {
        let data = try Data(contentsOf: directory.appendingPathComponent(file))
        guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let features = root["features"] as? [[String: Any]]
        else { throw FixtureError("\(file) is not a GeoJSON FeatureCollection") }
        return features.map {
            Feature(properties: $0["properties"] as? [String: Any] ?? [:], geometry: $0["geometry"] as? [String: Any] ?? [:])
        }
    }

    /// Rows of a simple comma-separated file with a header line and no quoted commas.
    func csvRows(_ file: String) throws -> [[String: String]] {
        let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
        var lines = text.split(whereSeparator: \.isNewline).map(String.init)
        guard !lines.isEmpty else { return [] }
        let header = lines.removeFirst().split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        return lines.map { line in
            let cells = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            return Dictionary(uniqueKeysWithValues: zip(header, cells))
        }
    }
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
