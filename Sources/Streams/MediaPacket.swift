import Foundation

/// The video codecs Vigil relays; they pass through untouched, never decoded on the video path.
public enum VideoCodec: String, Sendable {
    case h264, hevc
}

/// One compressed video packet as read from a source: its bytes (Annex B for MPEG-TS and RTSP
/// sources), timestamps in the source's time base, and what a relay needs to know to drop it.
public struct MediaPacket: Sendable {
    public var data: Data
    public var pts: Int64?
    public var dts: Int64?
    public var duration: Int64
    public var isKeyframe: Bool
    /// No other frame refers to it (H.264 `nal_ref_idc` 0, HEVC sub-layer non-reference): a
    /// slow subscriber may lose it without breaking the pictures after it.
    public var isDisposable: Bool
    /// FFmpeg flagged it as corrupt.
    public var isCorrupt: Bool
    /// When the relay read it from the live source (the wall clock a recording's index is kept
    /// in); nil for packets that did not come from a live feed.
    public var receivedAt: Date?

    public init(data: Data, pts: Int64?, dts: Int64?, duration: Int64, isKeyframe: Bool, isDisposable: Bool, isCorrupt: Bool = false) {
        self.data = data
        self.pts = pts
        self.dts = dts
        self.duration = duration
        self.isKeyframe = isKeyframe
        self.isDisposable = isDisposable
        self.isCorrupt = isCorrupt
    }
}

/// NAL unit scanning of Annex B byte streams (start codes 00 00 01 / 00 00 00 01).
enum AnnexB {
    /// The NAL units of a packet, without their start codes.
    static func nalUnits(_ data: Data) -> [Data] {
        let bytes = [UInt8](data)
        var starts: [(start: Int, payload: Int)] = []
        var index = 0
        while index + 2 < bytes.count {
            if bytes[index] == 0, bytes[index + 1] == 0, bytes[index + 2] == 1 {
                let start = index > 0 && bytes[index - 1] == 0 ? index - 1 : index
                starts.append((start, index + 3))
                index += 3
            } else {
                index += 1
            }
        }
        return starts.enumerated().map { offset, unit in
            let end = offset + 1 < starts.count ? starts[offset + 1].start : bytes.count
            return Data(bytes[unit.payload..<max(unit.payload, end)])
        }
    }

    /// Whether every picture slice of the packet is unreferenced (so it can be dropped).
    static func isDisposable(_ data: Data, codec: VideoCodec) -> Bool {
        var slices = 0
        for unit in nalUnits(data) {
            guard let header = unit.first else { continue }
            switch codec {
            case .h264:
                let type = header & 0x1F
                guard type == 1 || type == 5 else { continue }  // coded slices
                slices += 1
                if header & 0x60 != 0 { return false }  // nal_ref_idc > 0
            case .hevc:
                let type = (header >> 1) & 0x3F
                guard type < 32 else { continue }  // VCL units
                slices += 1
                // TRAIL_N, TSA_N, STSA_N, RADL_N, RASL_N, RSV_VCL_N10/12/14: even types below 16.
                if !(type < 16 && type % 2 == 0) { return false }
            }
        }
        return slices > 0
    }

    /// The parameter sets of a packet (H.264 SPS and PPS; HEVC VPS, SPS and PPS), with start codes.
    static func parameterSets(_ data: Data, codec: VideoCodec) -> Data {
        var sets = Data()
        for unit in nalUnits(data) {
            guard let header = unit.first else { continue }
            let isParameterSet = switch codec {
            case .h264: [7, 8].contains(header & 0x1F)
            case .hevc: [32, 33, 34].contains((header >> 1) & 0x3F)
            }
            if isParameterSet { sets += Data([0, 0, 0, 1]) + unit }
        }
        return sets
    }

    /// `data` with `sets` in front, unless it carries parameter sets of its own: a keyframe a
    /// decoder can start from.
    static func withParameterSets(_ sets: Data, before data: Data, codec: VideoCodec) -> Data {
        sets.isEmpty || !parameterSets(data, codec: codec).isEmpty ? data : sets + data
    }
}
