internal import CGEOS

/// One GEOS reentrant context, collecting the messages of its error handler.
///
/// - Important: A context and the geometries made with it are confined to one thread at a
///   time; the owner of a context serialises access to it.
final class GEOSContext {
    let handle: GEOSContextHandle_t
    private var pendingMessages: [String] = []

    init() {
        // GEOS_init_r never returns NULL short of memory exhaustion.
        handle = GEOS_init_r()
        GEOSContext_setErrorMessageHandler_r(handle, { message, userdata in
            guard let message, let userdata else { return }
            let context = Unmanaged<GEOSContext>.fromOpaque(userdata).takeUnretainedValue()
            context.pendingMessages.append(String(cString: message))
        }, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        GEOS_finish_r(handle)
    }

    /// The error for a failed call, with whatever GEOS said since the last one.
    func error(_ operation: String) -> GEOSError {
        defer { pendingMessages.removeAll() }
        return GEOSError(operation: operation, messages: pendingMessages)
    }
}
