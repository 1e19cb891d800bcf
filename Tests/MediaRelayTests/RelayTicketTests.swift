import Foundation
import Bus
import Geo
import Testing
@testable import MediaRelay

/// A relay node's only authorisation for a view: the coordinator's signed ticket.
@Suite("Relay tickets")
struct RelayTicketTests {
    let secret = Data(repeating: 7, count: 32)
    let issued = Date(timeIntervalSince1970: 1_800_000_000)

    var ticket: RelayTicket {
        RelayTicket(
            view: "v-1", grant: "g-1", incident: 7, camera: "stib-0001", viewerKey: String(repeating: "k", count: 40), agency: "pz-5339",
            user: "officer", expires: issued.addingTimeInterval(RelayTicket.lifetime), link: nil)
    }

    @Test func aSignedTicketVerifiesUntilItExpires() throws {
        let token = try ticket.signed(with: secret)
        #expect(!token.contains("/") && !token.contains("+") && !token.contains("="), "fits in a link's address as it is")
        #expect(RelayTicket.verified(token, with: secret, now: issued) == ticket)
        #expect(RelayTicket.verified(token, with: secret, now: issued.addingTimeInterval(29)) == ticket)
        #expect(RelayTicket.verified(token, with: secret, now: issued.addingTimeInterval(30)) == nil, "expired")
    }

    /// A playback's link carries the camera's masks in its address: with the most the registry
    /// admits, at the longest each point can be written, the link stays within the 4,096
    /// characters FFmpeg's players read (with room for a long host name), and the masks come
    /// back as they went.
    @Test func thePlaybackLinkOfTheLargestMasksFitsFFmpegsPlayers() throws {
        let perMask = PrivacyMaskLimits.points / PrivacyMaskLimits.masks
        let masks = (0..<PrivacyMaskLimits.masks).map { number in
            PrivacyMaskLimits.rounded((0..<perMask).map { point in [0.123456 + Double(number) / 100, 0.876543 - Double(point) / 1_000] })
        }
        #expect(masks.joined().count == PrivacyMaskLimits.points)
        var playback = ticket
        (playback.camera, playback.user, playback.link, playback.at) = (String(repeating: "c", count: 64), String(repeating: "u", count: 64), true, issued)
        playback.masks = TicketMasks(masks)
        let token = try playback.signed(with: secret)
        #expect(RelayTicket.verified(token, with: secret, now: issued) == playback)
        #expect(RelayTicket.verified(token, with: secret, now: issued)?.masks?.polygons == masks, "packed losslessly")
        let link = "http://relay-node-07.crisis-centre.example.brussels:48080/views/\(token)/stream.ts"
        #expect(link.utf8.count <= 4_096 - 512, "\(link.utf8.count) characters")
    }

    /// A packed mask off the registry's grid comes back on it (and one out of the picture on
    /// its edge); a count that promises more points than follow is refused, not read past.
    @Test func ticketMasksKeepTheGridAndRefuseShortPacks() throws {
        let packed = try BusProtocol.encoder.encode(TicketMasks([[[0.5, 0], [1, 1], [0.123456, 0.99999]]]))
        #expect(try BusProtocol.decoder.decode(TicketMasks.self, from: packed).polygons == [[[0.5, 0], [1, 1], [0.1235, 1]]])
        // What the registry never admits packs on the grid all the same, without trapping.
        let odd = try BusProtocol.encoder.encode(TicketMasks([[[.nan, -1], [2, .infinity], [0.5]]]))
        #expect(try BusProtocol.decoder.decode(TicketMasks.self, from: odd).polygons == [[[0, 0], [1, 0], [0.5, 0]]])
        // One mask of 3 points, but only one point's bytes: 00 03 | 13 88 00 00.
        let short = Data(#""AAMTiAAA""#.utf8)
        #expect(throws: DecodingError.self) { try BusProtocol.decoder.decode(TicketMasks.self, from: short) }
        #expect(throws: DecodingError.self) { try BusProtocol.decoder.decode(TicketMasks.self, from: Data(#""AAM""#.utf8)) }
    }

    @Test func aForgedOrAlteredTicketIsRefused() throws {
        let token = try ticket.signed(with: secret)
        #expect(RelayTicket.verified(token, with: Data(repeating: 8, count: 32), now: issued) == nil, "another node's secret")
        var other = ticket
        other.camera = "stib-0002"
        let forged = try other.signed(with: Data(repeating: 8, count: 32))
        let spliced = String(forged.split(separator: ".")[0]) + "." + String(token.split(separator: ".")[1])
        #expect(RelayTicket.verified(spliced, with: secret, now: issued) == nil, "a payload under another's signature")
        for bad in ["", ".", "a.b", "not-a-ticket", token + "x", String(token.dropLast(2))] {
            #expect(RelayTicket.verified(bad, with: secret, now: issued) == nil, "\(bad)")
        }
    }
}

/// A node judges tickets by the coordinator's clock, which each answer carries: the two hosts'
/// clocks need not agree (they differed by minutes on a site without time service).
@Suite("Relay tickets across clocks")
struct RelayTicketClockTests {
    let secret = Data(repeating: 9, count: 32)

    func linkToken(expiring expires: Date) throws -> String {
        try RelayTicket(
            view: "v-1", grant: "g-1", incident: 7, camera: "stib-0001", viewerKey: "", agency: "pz-5339", user: "officer", expires: expires, link: true
        ).signed(with: secret)
    }

    @Test(arguments: [-300.0, 300.0])
    func aTicketLastsThirtySecondsOnTheCoordinatorsClock(coordinatorAhead: TimeInterval) throws {
        let authority = RelayNodeAuthority()
        let coordinatorNow = Date().addingTimeInterval(coordinatorAhead)
        authority.registered(secret: secret, coordinatorNow: coordinatorNow)
        // Fresh on the coordinator's clock: valid here, whatever this host's clock says.
        #expect(authority.allowLink(try linkToken(expiring: coordinatorNow.addingTimeInterval(RelayTicket.lifetime))) != nil)
        // Expired on the coordinator's clock (though in this host's future when it is behind).
        #expect(authority.allowLink(try linkToken(expiring: coordinatorNow.addingTimeInterval(-1))) == nil)
    }

    @Test func eachAnswerSetsTheClockAgain() throws {
        let authority = RelayNodeAuthority()
        authority.registered(secret: secret, coordinatorNow: Date())
        let behind = Date().addingTimeInterval(-600)
        authority.answered(ending: [:], coordinatorNow: behind)
        #expect(authority.allowLink(try linkToken(expiring: behind.addingTimeInterval(20))) != nil)
    }
}
