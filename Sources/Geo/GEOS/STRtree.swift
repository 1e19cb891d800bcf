internal import CGEOS

/// A GEOS STRtree whose items are the integer positions of the inserted geometries.
///
/// The tree keeps the inserted geometries alive, since GEOS refers to their envelopes.
///
/// - Important: Confined to one thread at a time, like its ``GEOSContext``. GEOS builds the
///   tree on the first query, so even queries must not run concurrently.
final class STRtree {
    private let context: GEOSContext
    private let handle: OpaquePointer
    private var geometries: [Geometry] = []

    init(context: GEOSContext, nodeCapacity: Int = 10) throws(GEOSError) {
        guard let tree = GEOSSTRtree_create_r(context.handle, nodeCapacity) else {
            throw context.error("GEOSSTRtree_create_r")
        }
        self.context = context
        self.handle = tree
    }

    deinit {
        GEOSSTRtree_destroy_r(context.handle, handle)
    }

    /// Inserts `geometry`; its item is its insertion position (0, 1, 2, …).
    func insert(_ geometry: Geometry) {
        // Item 0 would be a NULL pointer, so positions are stored plus one.
        let item = UnsafeMutableRawPointer(bitPattern: geometries.count + 1)
        GEOSSTRtree_insert_r(context.handle, handle, geometry.handle, item)
        geometries.append(geometry)
    }

    var count: Int { geometries.count }

    /// The positions of the items whose envelopes intersect the given box, in no set order.
    func query(minX: Double, minY: Double, maxX: Double, maxY: Double) throws(GEOSError) -> [Int] {
        let box = try Geometry.rectangle(minX: minX, minY: minY, maxX: maxX, maxY: maxY, context: context)
        var found: [Int] = []
        withUnsafeMutablePointer(to: &found) { foundPointer in
            GEOSSTRtree_query_r(context.handle, handle, box.handle, { item, userdata in
                guard let item, let userdata else { return }
                userdata.assumingMemoryBound(to: [Int].self).pointee.append(Int(bitPattern: item) - 1)
            }, foundPointer)
        }
        return found
    }
}
