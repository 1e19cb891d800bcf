import Foundation
import Glibc
import Testing
@testable import MediaRelay

/// A camera's chunks in a memory file, sent from there: what is written reads back, and pages are
/// given back only once every chunk in them is gone, and only whole pages.
@Suite("Chunk files")
struct ChunkFileTests {
    private func chunk(_ number: Int, bytes: Int) -> [UInt8] {
        (0..<bytes).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ number) }
    }

    private func read(_ file: ChunkFile, at offset: Int, count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let got = bytes.withUnsafeMutableBytes { pread(file.descriptor, $0.baseAddress, count, off_t(offset)) }
        return Array(bytes.prefix(max(0, got)))
    }

    @Test func chunksAreWrittenOneAfterAnotherAndReadBack() throws {
        let file = try #require(ChunkFile(name: "test"))
        let (first, second) = (chunk(1, bytes: 3_000), chunk(2, bytes: 5_000))
        let at1 = try #require(first.withUnsafeBytes { file.append($0.baseAddress!, count: $0.count) })
        let at2 = try #require(second.withUnsafeBytes { file.append($0.baseAddress!, count: $0.count) })
        #expect(at1 == 0 && at2 == 3_000, "one after another, so that a player's next chunks go in one call")
        #expect(read(file, at: at1, count: 3_000) == first && read(file, at: at2, count: 5_000) == second)
    }

    @Test func pagesAreGivenBackOnlyBelowTheOldestChunkAlive() throws {
        let file = try #require(ChunkFile(name: "test"))
        let chunks = (0..<300).map { chunk($0, bytes: 10_000) }
        let offsets = try chunks.map { bytes in try #require(bytes.withUnsafeBytes { file.append($0.baseAddress!, count: $0.count) }) }
        #expect(file.heldBytes == 3_000_000)
        // Every chunk but the first gone: the first still holds the file's start, nothing is given back.
        for offset in offsets.dropFirst().prefix(289) { file.release(offset) }
        #expect(file.heldBytes == 3_000_000, "a chunk alive keeps every page after it")
        file.release(offsets[0])
        // Now the pages below chunk 290 go, whole pages only: the page it starts in stays.
        let kept = file.heldBytes
        #expect(kept > 3_000_000 - offsets[290] && kept < 3_000_000 - offsets[290] + 4_096 + 1, "\(kept)")
        for index in 290..<300 {
            #expect(read(file, at: offsets[index], count: 10_000) == chunks[index], "chunk \(index) is whole after its neighbours went")
        }
        // What was given back reads as zeros (a hole), not as the old bytes.
        #expect(read(file, at: 0, count: 4_096).allSatisfy { $0 == 0 })
    }
}
