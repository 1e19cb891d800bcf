import Synchronization

/// The current camera index of a deployment, which can be replaced while queries run: a new
/// index is built aside, then swapped in with one pointer store; queries that already hold the
/// old one finish on it.
public final class CameraEngine: Sendable {
    private let current: Mutex<CameraIndex>

    public init(index: CameraIndex) {
        current = Mutex(index)
    }

    /// The index to query now.
    public var index: CameraIndex {
        current.withLock { $0 }
    }

    /// Builds an index of `cameras` in the same CRS and swaps it in, leaving out (and returning)
    /// those ``CameraAdmission`` refuses. Queries are not blocked while it builds; a failure
    /// leaves the current index in place.
    @discardableResult
    public func replace(with cameras: [Camera]) throws(GeoError) -> CameraIndex {
        let previous = index
        let replacement = try CameraIndex(admitting: cameras, projection: previous.projection, disclosure: previous.disclosure)
        current.withLock { $0 = replacement }
        return replacement
    }
}
