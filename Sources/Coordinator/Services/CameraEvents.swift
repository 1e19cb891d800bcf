import MediaRelay
import ServiceLifecycle

/// What the relay's cameras do (feed states, thumbnails, its own and its nodes'), published on
/// the agencies' camera and thumbnail channels in the order they happened, until the relay stops.
struct CameraEvents: Service {
    let relay: Relay
    let publisher: ChannelPublisher

    func run() async {
        for await event in relay.events {
            switch event {
            case .cameraState(let camera, let state, let incidents): await publisher.cameraState(camera, state, incidents: incidents)
            case .thumbnail(let thumbnail, let incidents): await publisher.thumbnail(thumbnail, incidents: incidents)
            }
        }
        // The relay stopped (it stops before this service is told to): a service that returns
        // before its turn would end the group with an error.
        try? await gracefulShutdown()
    }
}
