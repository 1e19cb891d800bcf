import Foundation
import Incidents
import Streams

// The messages of the media endpoint (`feed.open`, `feed.link`, the packets) and of relay
// nodes (`relay.register`, `relay.report`), and the camera events relays produce.

/// The body of `feed.open` on the media endpoint.
public struct FeedOpenBody: Codable, Sendable {
    public var camera: String
    public var justification: WireJustification?
    /// On a relay node: the ticket from the coordinator's redirect, instead of a justification.
    public var ticket: String?
    /// Play the recorded footage from this moment (a playback, from the keyframe before it) instead of live.
    public var at: Date?
    /// The prosecutor's decision that police footage older than a month needs.
    public var prosecutorReference: String?
    /// How live video reaches the viewer: `packets` (the default: each packet on this CURVE
    /// connection, encrypted for this viewer alone) or `sealed` (MPEG-TS sealed once per camera
    /// with a content key given here, read from the relay's HTTP endpoint; see ``SealedFrame``).
    public var delivery: FeedDelivery?
    /// The relay node that stopped serving this viewer's previous view of the camera (it went
    /// silent mid-view): the coordinator drops it at once if it has missed a report too, so the
    /// camera is placed on another relay.
    public var relayUnreachable: String?
    /// The site the viewer watches from (a relay node's `--site`): a camera pulled at another
    /// site is served to it by a relay node of its own site, when there is one (an edge).
    public var site: String?

    public init(
        camera: String, justification: WireJustification? = nil, ticket: String? = nil, at: Date? = nil, prosecutorReference: String? = nil,
        delivery: FeedDelivery? = nil, relayUnreachable: String? = nil, site: String? = nil
    ) {
        self.site = site
        self.relayUnreachable = relayUnreachable
        self.camera = camera
        self.justification = justification
        self.ticket = ticket
        self.at = at
        self.prosecutorReference = prosecutorReference
        self.delivery = delivery
    }
}

/// How a live view's video reaches its viewer.
public enum FeedDelivery: String, Codable, Sendable, CaseIterable {
    /// Two-frame messages on the media endpoint, one per packet, each encrypted by CURVE for this viewer.
    case packets
    /// The camera's MPEG-TS, sealed once for all its viewers with a content key (``SealedFrame``).
    case sealed
}

/// Where a sealed view's stream is read, and the key it is sealed with now.
public struct SealedStreamAccess: Codable, Sendable {
    /// `http://HOST:PORT/views/TOKEN/sealed`: a `GET` answers the sealed frames.
    public var url: String
    public var contentKey: ContentKey
    public init(url: String, contentKey: ContentKey) {
        (self.url, self.contentKey) = (url, contentKey)
    }
}

/// The reply to `feed.open`: the view, the grant that allowed it, and the stream to mux.
public struct FeedOpenResult: Codable, Sendable {
    public var view: String
    public var grant: String
    /// The stream, or nil with a redirect: the camera is on a relay node; open it there with the ticket.
    public var stream: VideoStreamInfo.Description?
    public var redirect: FeedRedirect?
    /// For `delivery: sealed`: where the stream is read, and its content key now.
    public var sealed: SealedStreamAccess?
    public init(
        view: String, grant: String, stream: VideoStreamInfo.Description? = nil, redirect: FeedRedirect? = nil, sealed: SealedStreamAccess? = nil
    ) {
        self.view = view
        self.grant = grant
        self.stream = stream
        self.redirect = redirect
        self.sealed = sealed
    }

}

/// The reply to `feed.link`: the view, and where a player plays it (its thumbnail beside it).
public struct FeedLinkResult: Codable, Sendable {
    public var view: String
    public var grant: String
    /// The stream, when this relay serves the camera (a relay node's link gives none).
    public var stream: VideoStreamInfo.Description?
    /// The relay node that serves the link, or nil for the server itself.
    public var relay: String?
    public var url: String
    public var thumbnailUrl: String
    public var unusedLinkExpiresAfterS: Int
    public init(view: String, grant: String, stream: VideoStreamInfo.Description? = nil, relay: String? = nil, url: String, thumbnailUrl: String, unusedLinkExpiresAfterS: Int) {
        self.view = view
        self.grant = grant
        self.stream = stream
        self.relay = relay
        self.url = url
        self.thumbnailUrl = thumbnailUrl
        self.unusedLinkExpiresAfterS = unusedLinkExpiresAfterS
    }

}

/// The header frame of every message after the reply: a packet (the payload frame follows) or
/// the end of the view.
public struct FeedMessage: Codable, Sendable {
    public var view: String
    public var type: String
    public var seq: Int64
    public var pts: Int64?
    public var dts: Int64?
    public var duration: Int64?
    public var key: Bool?
    public var reason: String?
    /// With `type` `content.key`: the key a sealed view's frames are sealed with from now on.
    public var contentKey: ContentKey?
    public init(
        view: String, type: String, seq: Int64, pts: Int64? = nil, dts: Int64? = nil, duration: Int64? = nil, key: Bool? = nil, reason: String? = nil,
        contentKey: ContentKey? = nil
    ) {
        self.view = view
        self.type = type
        self.seq = seq
        self.pts = pts
        self.dts = dts
        self.duration = duration
        self.key = key
        self.reason = reason
        self.contentKey = contentKey
    }

}

/// The body of `relay.register`: where the node serves views (its media endpoint, and the
/// `http://HOST:PORT` of its links when it serves them), and how much it may carry.
public struct RelayRegisterBody: Codable, Sendable {
    public var media: String
    public var serverKey: String
    public var maximumStreams: Int
    public var maximumMbps: Double
    public var links: String?
    /// The most bytes of footage the node keeps; absent: it records nothing.
    public var footageBudgetBytes: Int?
    /// The site the node stands at (a building, a network: `stib-dc`, `north`); absent: none.
    public var site: String?
    /// The camera owners whose cameras are pulled at this node's site (their origin): such a
    /// camera is opened only by relay nodes of that site while one is registered.
    public var origins: [String]?

    public init(
        media: String, serverKey: String, maximumStreams: Int, maximumMbps: Double, links: String? = nil, footageBudgetBytes: Int? = nil,
        site: String? = nil, origins: [String]? = nil
    ) {
        self.site = site
        self.origins = origins
        self.footageBudgetBytes = footageBudgetBytes
        self.media = media
        self.serverKey = serverKey
        self.maximumStreams = maximumStreams
        self.maximumMbps = maximumMbps
        self.links = links
    }
}

/// The reply to `relay.register`: the node's name (its user id), the secret that signs its view
/// tickets, and how often it must report.
public struct RelayRegisterResult: Codable, Sendable {
    public var relay: String
    public var secret: String
    public var reportIntervalMs: Int
    /// The coordinator's clock as it answered: the node judges the tickets it signs by it.
    public var now: Date?
    public init(relay: String, secret: String, reportIntervalMs: Int, now: Date? = nil) {
        self.relay = relay
        self.secret = secret
        self.reportIntervalMs = reportIntervalMs
        self.now = now
    }

}

/// The body of `relay.report`, once per interval: each open camera's state, the views being
/// served, those that ended since the last report, the load, and the thumbnails made since
/// the last report (the newest `maximumThumbnails`; thumbnails are latest-wins).
public struct RelayReportBody: Codable, Sendable {
    public static let maximumThumbnails = 16

    public var cameras: [String: WireFeedState]
    public var views: [String]
    public var ended: [String]
    public var streams: Int
    public var mbps: Double
    public var thumbnails: [ThumbnailEvent]?
    /// Segments the node closed since its last report (on its first, every one in its folder).
    public var segments: [RecordedSegment]?
    /// Segment files the node removed, as the coordinator asked.
    public var removed: [String]?
    /// The cameras the node pulls from an origin node as an edge (a new coordinator adopting its
    /// views learns so that the node is an edge for them, not their origin).
    public var pulled: [String]?
    /// Origin nodes this edge node's pulls failed from since its last report: the coordinator
    /// drops one at once if it has missed a report too, as when a viewer says so (`relay_unreachable`).
    public var unreachable: [String]?
    public static let maximumSegments = 500

    public init(cameras: [String: WireFeedState], views: [String], ended: [String], streams: Int, mbps: Double, thumbnails: [ThumbnailEvent]? = nil) {
        self.cameras = cameras
        self.views = views
        self.ended = ended
        self.streams = streams
        self.mbps = mbps
        self.thumbnails = thumbnails
    }

}

/// A feed state on the wire (`camera.state` bodies and reports): `connecting`, `live`,
/// `stalled`, `down` or `stopped`, with the reason when there is one.
public struct WireFeedState: Codable, Equatable, Sendable {
    public var state: String
    public var reason: String?

    public init(_ state: FeedState) {
        switch state {
        case .connecting: self.state = "connecting"
        case .live: self.state = "live"
        case .stalled(let reason): (self.state, self.reason) = ("stalled", reason)
        case .down(let reason): (self.state, self.reason) = ("down", reason)
        case .stopped: self.state = "stopped"
        }
    }

    public var feedState: FeedState {
        switch state {
        case "connecting": .connecting(attempt: 0)
        case "live": .live
        case "stalled": .stalled(reason: reason ?? "")
        case "stopped": .stopped
        default: .down(reason: reason ?? state)
        }
    }
}

/// The reply to `relay.report`: the cameras the node must keep open, and the views it must end;
/// which of its cameras it records, and which of its segment files it must remove.
public struct RelayReportResult: Codable, Sendable {
    public var assignments: [RelayAssignment]
    public var end: [String: String]
    public var record: [String]?
    public var remove: [String]?
    /// The coordinator's clock as it answered (the node's tickets' expiries are on it).
    public var now: Date?
    public init(assignments: [RelayAssignment], end: [String: String], record: [String]? = nil, remove: [String]? = nil) {
        self.assignments = assignments
        self.end = end
        self.record = record
        self.remove = remove
    }

}

/// A camera a relay node must keep open: from its own source (`url`), or, on an edge, from
/// the origin relay node that pulls it at its owner's site (`upstream`).
public struct RelayAssignment: Codable, Sendable {
    public var camera: String
    /// The camera's source, or `relay://ORIGIN/CAMERA` on an edge.
    public var url: String
    public var masks: [[[Double]]]
    /// On an edge: the origin node's media endpoint and a ticket for `feed.upstream` there,
    /// renewed with every report.
    public var upstream: FeedRedirect?
    /// On the origin: the edge nodes that may pull the camera from it now (`feed.upstream`).
    public var edges: [String]?
    public init(camera: String, url: String, masks: [[[Double]]], upstream: FeedRedirect? = nil, edges: [String]? = nil) {
        self.camera = camera
        self.url = url
        self.masks = masks
        self.upstream = upstream
        self.edges = edges
    }

}

/// Where `feed.open` sends a viewer whose camera another relay serves.
public struct FeedRedirect: Codable, Sendable {
    public var relay: String
    public var media: String
    public var serverKey: String
    public var ticket: String
    public init(relay: String, media: String, serverKey: String, ticket: String) {
        self.relay = relay
        self.media = media
        self.serverKey = serverKey
        self.ticket = ticket
    }

}

/// The body of a `camera.thumbnail` event: the JPEG, base64 in the JSON like every body (also
/// how a relay node hands its thumbnails to the server).
public struct ThumbnailEvent: Codable, Sendable {
    public var camera: String
    public var width: Int
    public var height: Int
    public var takenAt: Date
    public var jpeg: Data

    public init(_ thumbnail: Thumbnail) {
        (camera, width, height, takenAt, jpeg) = (thumbnail.camera, thumbnail.width, thumbnail.height, thumbnail.takenAt, thumbnail.jpeg)
    }

    public var thumbnail: Thumbnail {
        Thumbnail(camera: camera, jpeg: jpeg, width: width, height: height, takenAt: takenAt)
    }
}

/// The body of `footage.fetch` on a relay node's media endpoint: the coordinator's signed ticket for one segment file.
public struct FootageFetchBody: Codable, Sendable {
    public var ticket: String
    public init(ticket: String) {
        self.ticket = ticket
    }
}

/// The reply to `footage.fetch` (the file's bytes follow as a second frame).
public struct FootageFetchResult: Codable, Sendable {
    public var file: String
    public var bytes: Int
    public init(file: String, bytes: Int) {
        self.file = file
        self.bytes = bytes
    }
}
