import Foundation

extension GeoJSONGeometry {
    /// The geometry of an area or route file: a bare geometry, a Feature, or feature number
    /// `feature` of a FeatureCollection.
    ///
    /// - Throws: ``GeoError`` `geometry_unreadable` (no such file), `geometry_invalid` (not
    ///   GeoJSON, or no such feature).
    public static func read(contentsOf path: String, feature: Int) throws(GeoError) -> GeoJSONGeometry {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw GeoError(.geometryUnreadable, message: "cannot read \(path)")
        }
        struct Feature: Decodable { var geometry: GeoJSONGeometry }
        struct Collection: Decodable { var features: [Feature] }
        let decoder = JSONDecoder()
        if let collection = try? decoder.decode(Collection.self, from: data) {
            guard collection.features.indices.contains(feature) else {
                throw GeoError(.geometryInvalid, message: "\(path) has \(collection.features.count) features; --feature \(feature) is not one")
            }
            return collection.features[feature].geometry
        }
        if let single = try? decoder.decode(Feature.self, from: data) { return single.geometry }
        if let geometry = try? decoder.decode(GeoJSONGeometry.self, from: data) { return geometry }
        throw GeoError(.geometryInvalid, message: "\(path) is not a GeoJSON geometry, feature or feature collection")
    }
}
