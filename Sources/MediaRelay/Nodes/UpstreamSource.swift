import Bus
import Foundation
import Streams
import VigilProtocol

/// An edge relay node's source for a camera pulled at another site: one `feed.upstream` view on
/// the origin node's media endpoint (CURVE, under the edge node's own key, with the ticket the
/// coordinator signed for it), whose packets it reads as a camera's. However many viewers the
/// edge serves, one stream crosses between the two sites.
///
/// Not thread-safe: one reader thread, the feed's.
final class UpstreamSource: PacketSource {
    let video: VideoStreamInfo
    let parameterSets: Data
    let interruption: StreamSource.Deadline?
    private let client: BusClient
    private let origin: String
    private let timeout: Duration
    /// How long a read waits for a packet: an origin sends one per frame, so a short silence
    /// means it died (a ZeroMQ connection to a dead host says nothing); the edge then reports it.
    static let stallTimeout = Duration.seconds(2)

    /// Opens the pull: fails with `source_unreachable` when the origin does not answer or
    /// refuses the ticket, `source_invalid` when it describes no stream.
    init(camera: String, from upstream: FeedRedirect, keys: CurveKeyPair, timeout: Duration) throws(MediaError) {
        let origin = "origin relay node \(upstream.relay) at \(upstream.media)"
        let client: BusClient
        let opened: FeedOpenResult
        do {
            client = try BusClient(configuration: BusClientConfiguration(
                commandEndpoint: upstream.media, eventEndpoint: upstream.media, serverPublicKey: upstream.serverKey, keys: keys))
        } catch {
            throw MediaError(.sourceUnreachable, message: "\(origin): \(error)")
        }
        do {
            opened = try client.request(.feedUpstream, body: FeedOpenBody(camera: camera, ticket: upstream.ticket), as: FeedOpenResult.self, timeout: timeout)
        } catch {
            client.close()
            throw MediaError(.sourceUnreachable, message: "\(origin): \(error)")
        }
        let video: VideoStreamInfo
        do throws(MediaError) {
            guard let description = opened.stream else { throw MediaError(.sourceInvalid, message: "\(origin) described no stream") }
            video = try VideoStreamInfo(description)
            parameterSets = Data(base64Encoded: description.parameterSets) ?? Data()
        } catch {
            client.close()
            throw error
        }
        self.video = video
        self.client = client
        self.origin = origin
        self.timeout = timeout
        interruption = StreamSource.Deadline()
    }

    deinit {
        client.close()
    }

    /// The next packet; `source_stalled` when the origin sends none for ``stallTimeout``,
    /// `source_unreachable` when it ends the pull. Gives up within 0.2 s of a cancellation.
    func read() throws(MediaError) -> MediaPacket? {
        let deadline = ContinuousClock.now + Self.stallTimeout
        while !(interruption?.isCancelled ?? false) {
            let frames: [Data]?
            do {
                frames = try client.receiveMessage(timeout: .milliseconds(200))
            } catch {
                throw MediaError(.sourceUnreachable, message: "\(origin): \(error)")
            }
            guard let frames else {
                if ContinuousClock.now > deadline {
                    throw MediaError(.sourceStalled, message: "\(origin) sent nothing for \(Self.stallTimeout.components.seconds) s")
                }
                continue
            }
            guard let header = try? BusProtocol.decoder.decode(FeedMessage.self, from: frames[0]) else { continue }
            if header.type == "feed.ended" {
                throw MediaError(.sourceUnreachable, message: "\(origin) ended the pull: \(header.reason ?? "no reason given")")
            }
            guard header.type == "packet", frames.count == 2 else { continue }
            return MediaPacket(
                data: frames[1], pts: header.pts, dts: header.dts, duration: header.duration ?? 0, isKeyframe: header.key ?? false, isDisposable: false)
        }
        return nil
    }

    func close() {
        client.close()
    }
}
