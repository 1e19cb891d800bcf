import Foundation
import Testing
import VigilProtocol

/// The sealed frame format (docs/protocol.md, "Sealed delivery"): what one key seals, only that
/// key opens, and no byte of a frame can change unnoticed.
@Suite("Sealed frames")
struct SealedFrameTests {
    let key = ContentKey.random(id: 7)
    /// Two MPEG-TS packets' worth of bytes.
    let transportStream = (0..<376).map { UInt8(truncatingIfNeeded: $0 * 31) }

    func sealed(counter: UInt64 = 3, keyframe: Bool = true) -> [UInt8] {
        transportStream.withUnsafeBytes { SealedFrame.seal($0, key: key, counter: counter, startsAtKeyframe: keyframe) }
    }

    @Test func aFrameOpensWithItsKeyAndSaysWhereItStands() throws {
        let frame = sealed()
        #expect(frame.count == SealedFrame.headerSize + transportStream.count + SealedFrame.tagSize)
        let opened = try SealedFrame.open(frame, keys: [7: key])
        #expect(opened == SealedFrame.Opened(keyID: 7, counter: 3, startsAtKeyframe: true, transportStream: transportStream))
        #expect(Array(frame[SealedFrame.headerSize..<(SealedFrame.headerSize + 16)]) != Array(transportStream.prefix(16)), "the bytes are not in the clear")
    }

    @Test func anotherKeyAChangedByteOrAnUnknownKeyIsRefused() throws {
        let frame = sealed()
        // Another key under the same id (a viewer that left keeps its old key, never the new one).
        #expect(throws: SealedFrame.Failure.notAuthentic) { try SealedFrame.open(frame, keys: [7: ContentKey.random(id: 7)]) }
        #expect(throws: SealedFrame.Failure.unknownKey(7)) { try SealedFrame.open(frame, keys: [8: ContentKey.random(id: 8)]) }
        // Every byte after the length field is covered: the counter, the flags, the ciphertext, the tag.
        for index in 4..<frame.count {
            var changed = frame
            changed[index] ^= 0x01
            #expect(throws: SealedFrame.Failure.self, "byte \(index)") { try SealedFrame.open(changed, keys: [7: key, 6: key]) }
        }
        #expect(throws: SealedFrame.Failure.self) { try SealedFrame.open(frame.dropLast(), keys: [7: key]) }
    }

    @Test func theReaderCutsAStreamIntoFramesHoweverItArrivesAndRefusesAnAbsurdLength() throws {
        let stream = sealed(counter: 0) + sealed(counter: 1, keyframe: false) + sealed(counter: 2, keyframe: false)
        var reader = SealedFrame.Reader()
        var counters: [UInt64] = []
        for start in stride(from: 0, to: stream.count, by: 100) {
            reader.append(stream[start..<min(stream.count, start + 100)])
            while let frame = try reader.next() { counters.append(try SealedFrame.open(frame, keys: [7: key]).counter) }
        }
        #expect(counters == [0, 1, 2])
        // All at once, then a frame's first bytes kept across an append.
        var whole = SealedFrame.Reader()
        whole.append(stream + stream.prefix(10))
        var wholeCounters: [UInt64] = []
        while let frame = try whole.next() { wholeCounters.append(try SealedFrame.open(frame, keys: [7: key]).counter) }
        whole.append(stream.dropFirst(10))
        while let frame = try whole.next() { wholeCounters.append(try SealedFrame.open(frame, keys: [7: key]).counter) }
        #expect(wholeCounters == [0, 1, 2, 0, 1, 2])
        var hostile = SealedFrame.Reader()
        hostile.append([0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 7])
        #expect(throws: SealedFrame.Failure.self) { try hostile.next() }
    }
}
