/// The metric coordinate reference systems Vigil computes distances in, one per deployment.
public enum MetricCRS: String, Sendable, CaseIterable, Codable {
    /// Belgian Lambert 2008, for Brussels.
    case belgianLambert2008 = "EPSG:3812"
    /// RGF93 / Lambert-93, for Marseille and the rest of metropolitan France.
    case lambert93 = "EPSG:2154"
}
