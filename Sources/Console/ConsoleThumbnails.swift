import Bus
import Foundation
import ServiceLifecycle
import Synchronization
import VigilProtocol

/// The newest thumbnail of each camera as each agency received it on its `thumbnails/AGENCY/`
/// channel: what the console shows that agency's users in a thumbnail tile. The channel's rules
/// decide (the camera's owner, or an agency whose user asked for an incident's thumbnails with a
/// justification, `thumbnails.start`); the console keeps only what was published to the agency.
final class ConsoleThumbnails: Service, Sendable {
    private let bus: BusServer
    private let latest = Mutex<[String: [String: ThumbnailEvent]]>([:])

    init(bus: BusServer) {
        self.bus = bus
    }

    /// The newest JPEG of `camera` published to `agency`, if any.
    func jpeg(of camera: String, for agency: String) -> Data? {
        latest.withLock { $0[agency]?[camera]?.jpeg }
    }

    private struct Published: Decodable {
        let type: String
        let body: ThumbnailEvent
    }

    /// Keeps what is published until the server stops (the console stops before the bus).
    func run() async throws {
        let published = bus.observePublished(prefix: EventChannel.thumbnailsPrefix)
        await cancelWhenGracefulShutdown { [self] in
            for await (topic, payload) in published {
                guard case .thumbnails(let agency)? = EventChannel(topic: topic),
                    let event = try? BusProtocol.decoder.decode(Published.self, from: payload), event.type == "camera.thumbnail"
                else { continue }
                latest.withLock { $0[agency, default: [:]][event.body.camera] = event.body }
            }
        }
    }
}
