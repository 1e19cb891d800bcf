import Testing
import VigilProtocol

@Suite("Event channels")
struct EventChannelTests {
    @Test func topicsReadBackAndPrefixesAreNoChannel() {
        let channels: [EventChannel] = [.incident(12, agency: "siamu"), .owner("stib"), .cameras(agency: "pz-5339"), .thumbnails(agency: "pz-5339"), .audit]
        for channel in channels {
            #expect(EventChannel(topic: channel.topic) == channel)
            #expect(channel.topic.hasSuffix("/") && channel.topic.hasPrefix(channel.name))
        }
        #expect(EventChannel.incident(12, agency: "siamu").name == "incident/12")
        for topic in ["", "incident/", "incident/12/", "incident/x/siamu/", "incident/12/siamu", "owner/", "owner//", "audit", "cameras/a/b/", "heartbeat/"] {
            #expect(EventChannel(topic: topic) == nil, "\(topic)")
        }
    }
}
