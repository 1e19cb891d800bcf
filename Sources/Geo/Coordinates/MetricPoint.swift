/// A position in a deployment's metric CRS (easting `x`, northing `y`, in metres).
public struct MetricPoint: Sendable, Hashable {
    public var x: Double
    public var y: Double

    public init(x: Double, y: Double) {
        self.x = x
        self.y = y
    }

    /// Planar distance in metres.
    public func distance(to other: MetricPoint) -> Double {
        ((x - other.x) * (x - other.x) + (y - other.y) * (y - other.y)).squareRoot()
    }
}
