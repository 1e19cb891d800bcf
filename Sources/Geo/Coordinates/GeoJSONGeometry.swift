/// An RFC 7946 geometry object as received from a caller (an area or a route), coordinates
/// in [lon, lat] order. Only its shape is checked when decoding; ``PlanarShape`` validates it.
public struct GeoJSONGeometry: Sendable, Codable, Equatable {
    /// Nested coordinate arrays of any depth.
    public indirect enum Coordinates: Sendable, Codable, Equatable {
        case position([Double])
        case list([Coordinates])

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let numbers = try? container.decode([Double].self) {
                self = .position(numbers)
            } else {
                self = .list(try container.decode([Coordinates].self))
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .position(let numbers): try container.encode(numbers)
            case .list(let items): try container.encode(items)
            }
        }
    }

    public var type: String
    public var coordinates: Coordinates

    public init(type: String, coordinates: Coordinates) {
        self.type = type
        self.coordinates = coordinates
    }
}

extension GeoJSONGeometry {
    /// The same geometry with its polygons' rings wound as RFC 7946 (section 3.1.6) requires of
    /// a producer: each exterior ring counter-clockwise, each hole clockwise (in [lon, lat], the
    /// right-hand rule). Other geometries, and rings too short to have an area, are unchanged.
    public var rightHanded: GeoJSONGeometry {
        func wound(_ polygon: Coordinates) -> Coordinates {
            guard case .list(let rings) = polygon else { return polygon }
            return .list(rings.enumerated().map { index, ring in Self.winding(ring, counterClockwise: index == 0) })
        }
        switch (type, coordinates) {
        case ("Polygon", _): return GeoJSONGeometry(type: type, coordinates: wound(coordinates))
        case ("MultiPolygon", .list(let polygons)): return GeoJSONGeometry(type: type, coordinates: .list(polygons.map(wound)))
        default: return self
        }
    }

    /// `ring` reversed if its winding is not the one wanted (the sign of its shoelace area).
    private static func winding(_ ring: Coordinates, counterClockwise: Bool) -> Coordinates {
        guard case .list(let positions) = ring else { return ring }
        let points = positions.compactMap { position -> (Double, Double)? in
            guard case .position(let numbers) = position, numbers.count >= 2 else { return nil }
            return (numbers[0], numbers[1])
        }
        guard points.count == positions.count, points.count >= 4 else { return ring }
        let twiceArea = zip(points, points.dropFirst()).reduce(0.0) { $0 + ($1.0.0 * $1.1.1 - $1.1.0 * $1.0.1) }
        guard twiceArea != 0 else { return ring }
        return (twiceArea > 0) == counterClockwise ? ring : .list(positions.reversed())
    }
}
