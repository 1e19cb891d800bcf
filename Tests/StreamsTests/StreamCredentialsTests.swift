import Streams
import Testing

@Suite("Stream credentials")
struct StreamCredentialsTests {
    @Test func credentialsAreRemovedAndTheRestKept() {
        let cases: [(String, String)] = [
            ("rtsp://admin:s3cret@10.0.0.7:554/Streaming/Channels/101", "rtsp://***@10.0.0.7:554/Streaming/Channels/101"),
            ("rtsp://admin@10.0.0.7/h264", "rtsp://***@10.0.0.7/h264"),
            ("rtsp://u:p@ss@[fd00::7]:8554/live", "rtsp://***@[fd00::7]:8554/live"),
            ("http://cam.example/video.cgi?resolution=720&Password=hunter2&user=op#x", "http://cam.example/video.cgi?resolution=720&Password=***&user=***#x"),
            ("rtsp://10.0.0.7/live?token=abc&channel=1", "rtsp://10.0.0.7/live?token=***&channel=1"),
            ("rtsp://10.0.0.7/a@b", "rtsp://10.0.0.7/a@b"),
            ("/var/lib/vigil/camera.ts", "/var/lib/vigil/camera.ts"),
            ("sim://pz5339-street-0001", "sim://pz5339-street-0001"),
        ]
        for (url, shown) in cases {
            #expect(StreamCredentials.redacted(url) == shown)
        }
    }

    @Test func anUnreachableSourceIsReportedWithoutItsPassword() {
        do {
            _ = try StreamSource(url: "rtsp://admin:s3cret@127.0.0.1:9/live", options: .init(timeout: .seconds(2)))
            Issue.record("a closed port opened")
        } catch {
            #expect(error.code == "source_unreachable")
            #expect(!error.description.contains("s3cret") && error.description.contains("127.0.0.1:9"), "\(error)")
        }
    }
}
