internal import CGEOS

/// A GEOS STRtree whose items are the integer positions of the inserted geometries.
///
/// Since GEOS 3.9 the tree copies each inserted envelope, so the geometries used to insert
/// need not outlive the insertion (Debian 12 has GEOS 3.11).
///
/// - Important: Confined to one thread at a time, like its ``GEOSContext``. GEOS builds the
///   tree on the first query, so even queries must not run concurrently.
final class STRtree {
    private let context: GEOSContext
    private let handle: OpaquePointer
    private(set) var count = 0

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

    /// Inserts an item covering the box; its item is its insertion position (0, 1, 2, …).
    func insert(minX: Double, minY: Double, maxX: Double, maxY: Double) throws(GEOSError) {
        let box = minX == maxX && minY == maxY
            ? try Geometry.point(x: minX, y: minY, context: context)
            : try Geometry.rectangle(minX: minX, minY: minY, maxX: maxX, maxY: maxY, context: context)
        // Item 0 would be a NULL pointer, so positions are stored plus one.
        GEOSSTRtree_insert_r(context.handle, handle, box.handle, UnsafeMutableRawPointer(bitPattern: count + 1))
        count += 1
    }

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
