import Bus
import Foundation
import ServiceLifecycle
import Synchronization
import VigilProtocol

/// The newest thumbnail of each camera as each agency received it on its `thumbnails/AGENCY/`
/// channel: what the console shows that agency's users in a thumbnail tile. The channel's rules
/// decide (the camera's owner, or an agency whose user asked for an incident's thumbnails with a
/// justification, `thumbnails.start`); the console keeps only what was published to the agency,
/// and forgets a camera's as soon as the agency's copy of an incident channel removes the camera
/// (a grant revoked or expired, the selection redrawn, the incident closed): a tile does not go
/// on showing a picture its agency may no longer see. Thumbnails still due come again.
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

    private struct Change: Decodable {
        struct Body: Decodable {
            let removed: [String]?
        }

        let body: Body
    }

    /// Keeps what is published, and forgets what the incident channels remove, until the server
    /// stops (the console stops before the bus). Both come in publishing order, through one stream.
    func run() async throws {
        let published = bus.observePublished(prefixes: [EventChannel.thumbnailsPrefix, "incident/"])
        await cancelWhenGracefulShutdown { [self] in
            for await (topic, payload) in published {
                switch EventChannel(topic: topic) {
                case .thumbnails(let agency)?:
                    guard let event = try? BusProtocol.decoder.decode(Published.self, from: payload), event.type == "camera.thumbnail" else { continue }
                    latest.withLock { $0[agency, default: [:]][event.body.camera] = event.body }
                case .incident(_, let agency)?:
                    guard let removed = (try? BusProtocol.decoder.decode(Change.self, from: payload))?.body.removed, !removed.isEmpty else { continue }
                    latest.withLock { latest in
                        for camera in removed { latest[agency]?[camera] = nil }
                    }
                default:
                    continue
                }
            }
        }
    }
}
