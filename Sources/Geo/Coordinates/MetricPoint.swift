import Foundation

/// A position in a deployment's metric CRS (easting `x`, northing `y`, in metres).
public struct MetricPoint: Sendable, Hashable {
    public var x: Double
    public var y: Double

    public init(x: Double, y: Double) {
        self.x = x
        self.y = y
    }

    /// Grid bearing from this point to `other`, in degrees clockwise from grid north, in [0, 360).
    public func bearing(to other: MetricPoint) -> Double {
        let degrees = atan2(other.x - x, other.y - y) * 180 / .pi
        return degrees < 0 ? degrees + 360 : degrees
    }

    /// Planar distance in metres.
    public func distance(to other: MetricPoint) -> Double {
        ((x - other.x) * (x - other.x) + (y - other.y) * (y - other.y)).squareRoot()
    }
}
