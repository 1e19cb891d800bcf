import ArgumentParser
import Bus
import Foundation
import MediaRelay
import Incidents
import Streams
import Synchronization
import VigilProtocol

struct WatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Watch a camera of an incident through the relay and write it as MPEG-TS (a file, or - for a pipe to ffplay or VLC).",
        discussion: """
            A consultation: act as a named user (--user), give the reason and a text. The first picture comes \
            from the relay's cached group of pictures, at once. Ends after --seconds, or when the relay ends \
            the view (access revoked, incident closed), which is said on stderr.

            With --at, the recorded footage is played from that moment instead (a playback, from the \
            keyframe before it, in real time): the grant must allow playback for that footage time; police \
            footage older than a month needs --prosecutor-reference. The view ends with the footage.

            With --link, no video is written: the relay gives an HTTP address that plays the view as \
            MPEG-TS in a player (vlc URL, ffplay URL), and one for the camera's thumbnail. The view lasts \
            while the link is played, and ends after 30 s without a player, or when access ends. With --at \
            too, the link plays the footage from that moment.

            With --site, the viewer says where it watches from: a camera pulled at another site is then \
            served by a relay node of this site (an edge), if one runs there.
            """)

    @Option(help: "The incident the camera is watched for.")
    var incident: Int64
    @Option(help: "The camera id.")
    var camera: String
    @Option(name: .shortAndLong, help: "The MPEG-TS output file, or - for standard output.")
    var output: String?
    @Flag(help: "Print an HTTP link that plays the view (and its thumbnail's) instead of writing video.")
    var link = false
    @Option(help: "The reason: \(ReasonCode.allCases.map(\.rawValue).joined(separator: ", ")).")
    var reason: String
    @Option(help: "Why, in words (5 to 1,000 characters).")
    var text: String
    @Option(help: "How long to watch, in seconds.")
    var seconds = 10.0
    @Option(help: "Play the recorded footage from this moment (ISO 8601, 2026-12-02T10:15:00Z) instead of live.")
    var at: String?
    @Option(help: "The prosecutor's decision reference, for police footage older than a month.")
    var prosecutorReference: String?
    @Option(help: "How live video comes: sealed (the camera's stream encrypted once for all its viewers, its keys over CURVE) or packets (each packet over CURVE for this viewer).")
    var delivery: FeedDelivery = .sealed
    @Option(help: "The site you watch from (a relay node's --site): served by a relay node there when the camera is pulled elsewhere.")
    var site: String?
    @OptionGroup var client: ClientOptions

    func validate() throws {
        guard seconds > 0, seconds <= 86_400 else { throw ValidationError("--seconds must be in (0, 86400]") }
        guard (output == nil) == link else { throw ValidationError("give either -o FILE (or -o -) or --link") }
        if let at, Self.moment(at) == nil { throw ValidationError("--at must be an ISO 8601 time such as 2026-12-02T10:15:00Z") }
    }

    /// An ISO 8601 time, with or without fractions of a second.
    static func moment(_ text: String) -> Date? {
        (try? Date(text, strategy: .iso8601))
            ?? (try? Date(text, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted)))
    }

    func run() throws {
        try reportingFailures(json: client.json) {
            var bus = try client.connect(media: true)
            defer { bus.close() }
            let justification = WireJustification(reason: reason, text: text, incident: incident)
            guard let output else {
                let linked = try client.call {
                    try bus.request(
                        .feedLink,
                        body: FeedOpenBody(camera: camera, justification: justification, at: at.flatMap(Self.moment), prosecutorReference: prosecutorReference, site: site),
                        as: FeedLinkResult.self,
                        timeout: client.viewTimeout)
                }
                let servedBy = linked.relay.map { " (served by relay node \($0))" } ?? ""
                FileHandle.standardError.write(Data(
                    "vigil watch: view \(linked.view) of \(camera)\(servedBy) under grant \(linked.grant); the link ends after \(linked.unusedLinkExpiresAfterS) s unplayed\n".utf8))
                print(linked.url)
                print(linked.thumbnailUrl)
                return
            }
            // A playback is one viewer's stream: sealing it once for all would buy nothing.
            let delivery = at == nil ? delivery : .packets
            let end = ContinuousClock.now + .seconds(seconds)
            var (opened, servedBy) = try open(justification: justification, delivery: delivery, relayUnreachable: nil, bus: &bus)
            // A relay without an HTTP endpoint answers a sealed request with packets.
            if opened.sealed != nil {
                let file = output == "-" ? FileHandle.standardOutput : try newOutputFile(URL(fileURLWithPath: output))
                defer { if output != "-" { try? file.close() } }
                var written = (frames: 0, lost: 0)
                while let sealed = opened.sealed {
                    let outcome = try watchSealed(opened, sealed, bus: bus, file: file, until: end, servedBy: servedBy)
                    written = (written.frames + outcome.frames, written.lost + outcome.lost)
                    // The relay node died mid-view: the server is asked again, and says where the camera is now.
                    guard outcome.relayStopped, let stopped = servedBy, end - ContinuousClock.now > .seconds(1) else {
                        Self.reportEnd(packets: written.frames, endedBy: outcome.endedBy, lost: written.lost)
                        return
                    }
                    FileHandle.standardError.write(Data("vigil watch: relay node \(stopped) stopped serving the view; asking the server again\n".utf8))
                    bus.close()
                    bus = try client.connect(media: true)
                    (opened, servedBy) = try open(justification: justification, delivery: delivery, relayUnreachable: stopped, bus: &bus)
                }
                Self.reportEnd(packets: written.frames, endedBy: "the relay serves this camera as packets now", lost: written.lost)
                return
            }
            guard let stream = opened.stream else { throw CommandFailure(.badReply, message: "the relay described no stream") }
            let writer = try StreamWriter(output: output == "-" ? "pipe:1" : output, video: try VideoStreamInfo(stream))
            FileHandle.standardError.write(Data("vigil watch: view \(opened.view) of \(camera) under grant \(opened.grant)\n".utf8))
            var packets = 0
            var endedBy: String?
            while ContinuousClock.now < end, endedBy == nil {
                guard let frames = try client.call({ try bus.receiveMessage(timeout: .seconds(1)) }) else { continue }
                guard let header = try? BusProtocol.decoder.decode(FeedMessage.self, from: frames[0]) else { continue }
                if header.type == "feed.ended" {
                    endedBy = header.reason ?? "ended"
                } else if header.type == "packet", frames.count == 2 {
                    let packet = MediaPacket(
                        data: frames[1], pts: header.pts, dts: header.dts, duration: header.duration ?? 0, isKeyframe: header.key ?? false,
                        isDisposable: false)
                    try writer.write(packet)
                    packets += 1
                }
            }
            if endedBy == nil { _ = try? bus.send(.feedClose, body: ViewStopBody(view: opened.view)) }
            try writer.finish()
            Self.reportEnd(packets: packets, endedBy: endedBy)
        }
    }

    /// Opens the view: the server decides it and serves it, or sends the viewer to the relay node
    /// that serves the camera, with a ticket (`bus` is then that node's). With `relayUnreachable`,
    /// the node that stopped serving the previous view: until the server believes it (the node
    /// missed a report too), a redirect to it again is asked anew, for a few seconds at most (a
    /// node still reporting by then is alive, and the view goes back to it).
    private func open(
        justification: WireJustification, delivery: FeedDelivery, relayUnreachable: String?, bus: inout BusClient
    ) throws -> (FeedOpenResult, servedBy: String?) {
        let body = FeedOpenBody(
            camera: camera, justification: justification, at: at.flatMap(Self.moment), prosecutorReference: prosecutorReference, delivery: delivery,
            relayUnreachable: relayUnreachable, site: site)
        let deadline = ContinuousClock.now + min(client.viewTimeout, .seconds(3))
        var opened = try client.call { try bus.request(.feedOpen, body: body, as: FeedOpenResult.self, timeout: client.viewTimeout) }
        while let redirect = opened.redirect, redirect.relay == relayUnreachable, ContinuousClock.now < deadline {
            Thread.sleep(forTimeInterval: 0.3)
            opened = try client.call { try bus.request(.feedOpen, body: body, as: FeedOpenResult.self, timeout: client.viewTimeout) }
        }
        guard let redirect = opened.redirect else { return (opened, nil) }
        // A relay node serves the camera: the server allowed the view and signed a ticket for it there.
        FileHandle.standardError.write(Data("vigil watch: \(camera) is served by relay node \(redirect.relay) at \(redirect.media)\n".utf8))
        bus.close()
        bus = try client.connect(toRelay: redirect)
        do throws(BusClientError) {
            opened = try bus.request(
                .feedOpen, body: FeedOpenBody(camera: camera, ticket: redirect.ticket, at: at.flatMap(Self.moment), delivery: delivery),
                as: FeedOpenResult.self, timeout: client.viewTimeout)
        } catch .serverUnreachable(_, _) {
            // Not the server: the node it sent us to (stopped or cut off since its last report).
            throw CommandFailure(.relayNodeUnreachable, message: """
                relay node \(redirect.relay) at \(redirect.media) did not answer in \(client.viewTimeout.components.seconds) s: \
                it may have stopped; the server moves its cameras once it has been silent for 5 s, so try again
                """)
        } catch {
            opened = try client.call { throw error }
        }
        return (opened, redirect.relay)
    }

    private static func reportEnd(packets: Int, endedBy: String?, lost: Int = 0) {
        let lostText = lost > 0 ? " (\(lost) lost: their key came too late)" : ""
        FileHandle.standardError.write(Data("vigil watch: \(packets) packets written\(lostText)\(endedBy.map { "; the relay ended the view: \($0)" } ?? "")\n".utf8))
    }

    /// How a sealed view ended: its frames, those lost (their key came too late), and why; or
    /// `relayStopped`: the relay node serving it went silent (its stream closed or stalled for a
    /// second with no word from it), so the viewer may ask the server again.
    private struct SealedOutcome {
        var frames: Int
        var lost: Int
        var endedBy: String?
        var relayStopped = false
    }

    /// A sealed view: the stream is read from the relay's HTTP endpoint and opened with the
    /// content keys that come on this CURVE connection, on a thread of its own, while this one
    /// takes the relay's messages (new keys, the view's end), until `end`.
    private func watchSealed(
        _ opened: FeedOpenResult, _ sealed: SealedStreamAccess, bus: BusClient, file: FileHandle, until end: ContinuousClock.Instant, servedBy node: String?
    ) throws -> SealedOutcome {
        let view = opened.view
        let stream: SealedStreamClient
        do {
            stream = try SealedStreamClient(url: sealed.url, key: sealed.contentKey)
        } catch {
            throw CommandFailure(.sealedStreamFailed, message: "\(error)")
        }
        FileHandle.standardError.write(Data("vigil watch: view \(view) of \(camera) under grant \(opened.grant), sealed (content key \(sealed.contentKey.id))\n".utf8))
        let reading = SealedReading()
        let thread = Thread {
            do {
                try stream.receive(stop: reading.stop) { try file.write(contentsOf: $0) }
            } catch {
                reading.failure.withLock { $0 = "\(error)" }
            }
            reading.finished.store(true, ordering: .relaxed)
        }
        thread.start()
        var outcome = SealedOutcome(frames: 0, lost: 0)
        var closedAt: ContinuousClock.Instant?
        var progress = (frames: 0, at: ContinuousClock.now)
        while ContinuousClock.now < end, outcome.endedBy == nil {
            if stream.statistics.frames != progress.frames { progress = (stream.statistics.frames, .now) }
            // The stream closed without a word from the relay: give its message a moment, then stop.
            // A relay node that dies says nothing: its stream closes, or stalls once it has started.
            if reading.finished.load(ordering: .relaxed) {
                if closedAt == nil { closedAt = .now }
                if let closedAt, ContinuousClock.now - closedAt > .seconds(node == nil ? 2 : 0.5) {
                    outcome.relayStopped = node != nil
                    break
                }
            } else if node != nil, progress.frames > 0, ContinuousClock.now - progress.at > .seconds(1) {
                outcome.relayStopped = true
                break
            }
            guard let frames = try client.call({ try bus.receiveMessage(timeout: .milliseconds(250)) }),
                let message = try? BusProtocol.decoder.decode(FeedMessage.self, from: frames[0]), message.view == view
            else { continue }
            if message.type == "feed.ended" {
                outcome.endedBy = message.reason ?? "ended"
            } else if message.type == "content.key", let key = message.contentKey {
                stream.add(key)
            }
        }
        reading.stop.store(true, ordering: .relaxed)
        while !reading.finished.load(ordering: .relaxed) { Thread.sleep(forTimeInterval: 0.01) }
        if outcome.endedBy == nil, !outcome.relayStopped { _ = try? bus.send(.feedClose, body: ViewStopBody(view: view)) }
        if let failure = reading.failure.withLock({ $0 }), !outcome.relayStopped { throw CommandFailure(.sealedStreamFailed, message: failure) }
        if outcome.endedBy == nil, closedAt != nil, !outcome.relayStopped { outcome.endedBy = "the relay closed the stream" }
        (outcome.frames, outcome.lost) = (stream.statistics.frames, stream.statistics.lost)
        return outcome
    }
}

/// What the watch command's reading thread and its own share.
private final class SealedReading: Sendable {
    let stop = Atomic(false)
    let finished = Atomic(false)
    let failure = Mutex<String?>(nil)
}

extension FeedDelivery: ExpressibleByArgument {}
