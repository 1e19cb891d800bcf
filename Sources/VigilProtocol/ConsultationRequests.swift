import Incidents

/// The body of `thumbnails.start`: the justification, which names the incident.
public struct ThumbnailsStartBody: Sendable, Codable {
    public var justification: WireJustification

    public init(justification: WireJustification) {
        self.justification = justification
    }
}

/// The body of `thumbnails.stop`.
public struct ThumbnailsStopBody: Sendable, Codable {
    public var incident: Int64

    public init(incident: Int64) {
        self.incident = incident
    }
}
