/// How much of a confidential camera's position selections may depend on.
///
/// An agency that may not locate a confidential camera still receives it when an incident
/// selects it and a grant lets it watch. If selections used the camera's exact position, the
/// answers to many incidents (whether the camera is in, its distance, its rank, its place along
/// a route) would locate it to a metre. With a disclosure cell, the index replaces each
/// confidential camera by the square of the metric grid that holds it (`cellMeters` a side):
/// the camera counts as a disc around the square's centre that covers the whole square, so it
/// is selected by every query that may reach it (never missed, sometimes taken a little
/// farther away) and every answer is a function of the square alone. What any sequence of
/// queries can learn is then which square the camera is in, and no more.
public struct LocationDisclosure: Sendable, Equatable {
    /// The side of the grid squares, in metres; nil selects on exact positions (the host's own
    /// tools, which read the registry anyway).
    public var cellMeters: Double?

    public init(cellMeters: Double?) {
        self.cellMeters = cellMeters
    }

    /// Exact positions for every camera.
    public static let exact = LocationDisclosure(cellMeters: nil)
    /// The server's rule: confidential cameras by the 500 m square that holds them.
    public static let confidentialCells = LocationDisclosure(cellMeters: 500)

    /// Where `camera` counts for selections, and how far beyond that point it may reach.
    func indexedPosition(of camera: Camera, at position: MetricPoint) -> (position: MetricPoint, reach: Double) {
        guard let cell = cellMeters, camera.confidentiality == .confidential else { return (position, 0) }
        let centre = MetricPoint(x: ((position.x / cell).rounded(.down) + 0.5) * cell, y: ((position.y / cell).rounded(.down) + 0.5) * cell)
        return (centre, cell * 2.0.squareRoot() / 2)
    }
}
