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
