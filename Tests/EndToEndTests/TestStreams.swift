import Foundation
import Testing

/// Writes a real H.264 (or H.265) MPEG-TS file made by ffmpeg (320×240, 25 fps, a keyframe each
/// second), for a camera whose stream is a looped file.
func makeTestStream(at path: String, seconds: Int = 4, hevc: Bool = false) async throws {
    let codec = hevc ? ["libx265", "-x265-params", "log-level=error:keyint=25"] : ["libx264", "-g", "25", "-bf", "2"]
    let made = try await run(URL(fileURLWithPath: "/usr/bin/ffmpeg"), [
        "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "\(seconds)", "-c:v",
    ] + codec + ["-pix_fmt", "yuv420p", "-f", "mpegts", path])
    #expect(made.status == 0, "\(made.stderr)")
}

/// A server whose registry has one more camera at the Grand-Place (`pz5339-sim-01`), its stream a
/// looped file of `streamSeconds`; with `hevcCamera`, a second beside it (`pz5339-sim-02`) whose stream is H.265.
func withCameraServer(
    _ name: String = "relay", arguments: [String] = [], hevcCamera: Bool = false, streamSeconds: Int = 4, _ body: (URL) async throws -> Void
) async throws {
    try await withStoppedServerFolder(name) { data in
        try await addTestCameras(to: data, hevcCamera: hevcCamera, streamSeconds: streamSeconds)
        try await withServer(data: data, arguments: arguments) { data, _ in try await body(data) }
    }
}

/// Adds those cameras to the registry of the stopped server's folder `data`, their streams
/// written in the folder.
func addTestCameras(to data: URL, hevcCamera: Bool = false, streamSeconds: Int = 4) async throws {
    let stream = data.appendingPathComponent("camera.ts").path
    try await makeTestStream(at: stream, seconds: streamSeconds)
    var features = [simulatedCameraFeature(stream: stream)]
    if hevcCamera {
        let hevc = data.appendingPathComponent("camera-hevc.ts").path
        try await makeTestStream(at: hevc, hevc: true)
        features.append(simulatedCameraFeature(stream: hevc, masks: "[]", hevc: true))
    }
    let registry = data.appendingPathComponent("camera.geojson")
    try Data(#"{"type":"FeatureCollection","features":["#.utf8 + Data(features.joined(separator: ",").utf8) + Data("]}".utf8)).write(to: registry)
    #expect(try await vigil("cameras", "import", registry.path, "--data", data.path).status == 0)
}

/// The registry's extra camera at the Grand-Place (`pz5339-sim-01`), its stream a file, its
/// privacy mask by default the picture's left half; with `hevc`, the H.265 one beside it (`pz5339-sim-02`).
func simulatedCameraFeature(stream: String, masks: String = "[[[0,0],[0.5,0],[0.5,1],[0,1]]]", hevc: Bool = false) -> String {
    """
    {"type":"Feature","geometry":{"type":"Point","coordinates":[\(hevc ? "4.35252,50.84672" : "4.3525,50.8467")]},
     "properties":{"id":"pz5339-sim-0\(hevc ? 2 : 1)","owner":"pz-5339","kind":"street","place_type":"square","range_m":40,
                   "stream":"\(stream)","confidentiality":"public","tags":[],"privacy_masks":\(masks)}}
    """
}

/// ffprobe's view of a video file: its codec, the frames it decodes, and what it printed as errors.
func probe(_ path: String) async throws -> (codec: String, frames: Int, errors: String) {
    let probed = try await run(URL(fileURLWithPath: "/usr/bin/ffprobe"), [
        "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=codec_name,nb_read_frames", "-of", "csv=p=0", path,
    ])
    let fields = (probed.stdout.split(separator: "\n").first ?? "").split(separator: ",")
    return (fields.first.map(String.init) ?? "", fields.count > 1 ? Int(fields[1]) ?? -1 : -1, probed.stderr)
}

/// The mean luma (0–255) of a region of each picture of a file, as ffmpeg's signalstats filter measures it.
func meanLumas(_ path: String, crop: String) async throws -> [Double] {
    let probed = try await run(URL(fileURLWithPath: "/usr/bin/ffprobe"), [
        "-v", "error", "-f", "lavfi", "-i", "movie=\(path),crop=\(crop),signalstats", "-show_entries", "frame_tags=lavfi.signalstats.YAVG",
        "-of", "csv=p=0",
    ])
    let values = probed.stdout.split(separator: "\n").compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
    #expect(!values.isEmpty, "\(probed.stderr)")
    return values
}

func meanLuma(_ path: String, crop: String) async throws -> Double {
    try #require(try await meanLumas(path, crop: crop).first)
}

/// Moves the registry's extra camera's privacy mask to `masks` (with `hevc`, the H.265 one's), as its owner does on the bus.
func updateSimulatedCameraMasks(_ data: URL, masks: String, hevc: Bool = false) async throws {
    let registry = data.appendingPathComponent("masks-\(UUID().uuidString).geojson")
    let feature = simulatedCameraFeature(stream: data.appendingPathComponent(hevc ? "camera-hevc.ts" : "camera.ts").path, masks: masks, hevc: hevc)
    try Data(#"{"type":"FeatureCollection","features":["#.utf8 + Data(feature.utf8) + Data("]}".utf8)).write(to: registry)
    let updated = try await vigil("cameras", "update", registry.path, "--data", data.path, "--agency", "pz-5339", "--timeout", "30")
    #expect(updated.status == 0, "\(updated.stderr)")
}
