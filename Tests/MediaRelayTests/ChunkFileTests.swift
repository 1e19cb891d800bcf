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

    /// The hazard of sending pages rather than copies: a socket still holds a chunk's pages
    /// when the chunk is gone and its pages are given back. They must reach the reader as sent.
    @Test func bytesASocketStillHoldsSurviveTheirPagesBeingGivenBack() throws {
        let file = try #require(ChunkFile(name: "test"))
        var ends: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0)
        defer { ends.forEach { close($0) } }
        var buffer: Int32 = 4 * 1024 * 1024
        setsockopt(ends[0], SOL_SOCKET, SO_SNDBUF, &buffer, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(ends[1], SOL_SOCKET, SO_RCVBUF, &buffer, socklen_t(MemoryLayout<Int32>.size))
        // 1.5 MB of chunks, sent and not read yet, then every one gone: the pages go back.
        let chunks = (0..<150).map { chunk($0, bytes: 10_000) }
        let offsets = try chunks.map { bytes in try #require(bytes.withUnsafeBytes { file.append($0.baseAddress!, count: $0.count) }) }
        var sent = 0
        while sent < 1_500_000 {
            let count = ChunkFile.send(file.descriptor, from: sent, count: 1_500_000 - sent, to: ends[0])
            guard count > 0 else { break }
            sent += count
        }
        #expect(sent == 1_500_000)
        // One more chunk stays alive, so that the pages below it can go.
        let last = chunk(150, bytes: 10_000)
        _ = last.withUnsafeBytes { file.append($0.baseAddress!, count: $0.count) }
        offsets.forEach(file.release)
        // (In steps of a megabyte: the first megabyte at least, all of it still in the socket.)
        #expect(file.heldBytes <= 1_510_000 - 1_048_576, "the pages went back: \(file.heldBytes) bytes held")
        var received: [UInt8] = []
        var piece = [UInt8](repeating: 0, count: 65_536)
        while received.count < 1_500_000 {
            let count = piece.withUnsafeMutableBytes { recv(ends[1], $0.baseAddress, $0.count, 0) }
            guard count > 0 else { break }
            received += piece.prefix(count)
        }
        #expect(received == Array(chunks.joined()), "what the socket held arrived as it was sent")
    }
}
