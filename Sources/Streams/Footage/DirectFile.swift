internal import CFFmpeg
import Foundation
import Glibc

/// A file written past the page cache (`O_DIRECT`), for footage: written once, read seldom, in
/// large aligned blocks. Copying every recorded byte into the page cache cost more than all the
/// rest of recording on a virtual machine (`vigil bench footage`); here bytes gather in an
/// aligned 1 MiB block that goes to the disk as it is. The last, partial block is padded to the
/// alignment and the file cut back to its length. Where `O_DIRECT` is refused (tmpfs), the
/// same file is written through the page cache.
final class DirectFile {
    static let alignment = 4_096
    static let blockBytes = 1 << 20

    private let fd: Int32
    private let block: UnsafeMutableRawPointer
    private var filled = 0
    private var length: Int64 = 0
    private var closed = false

    init(path: String) throws(MediaError) {
        var fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | vigil_o_direct(), 0o644)
        if fd < 0, errno == EINVAL { fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644) }
        guard fd >= 0 else { throw MediaError(.recordingFailed, message: "cannot write \(path): \(String(cString: strerror(errno)))") }
        var memory: UnsafeMutableRawPointer?
        guard posix_memalign(&memory, Self.alignment, Self.blockBytes) == 0, let memory else {
            close(fd)
            throw MediaError(.recordingFailed, message: "out of memory")
        }
        self.fd = fd
        block = memory
    }

    deinit {
        _ = try? finish()
        free(block)
    }

    /// Appends bytes; 0, or a negative errno when the disk refused a block.
    func append(_ bytes: UnsafeRawPointer, count: Int) -> Int32 {
        var offset = 0
        while offset < count {
            let taken = min(count - offset, Self.blockBytes - filled)
            (block + filled).copyMemory(from: bytes + offset, byteCount: taken)
            filled += taken
            offset += taken
            if filled == Self.blockBytes, let failure = writeBlock(Self.blockBytes) { return failure }
        }
        return 0
    }

    /// Writes what is left (padded to the alignment), cuts the file to its length and closes it.
    func finish() throws(MediaError) {
        guard !closed else { return }
        closed = true
        defer { close(fd) }
        if filled > 0 {
            let kept = filled
            let padded = (filled + Self.alignment - 1) / Self.alignment * Self.alignment
            (block + filled).initializeMemory(as: UInt8.self, repeating: 0, count: padded - filled)
            if let failure = writeBlock(padded) { throw MediaError(.recordingFailed, message: "write: \(String(cString: strerror(-failure)))") }
            length -= Int64(padded - kept)
        }
        guard ftruncate(fd, off_t(length)) == 0 else { throw MediaError(.recordingFailed, message: "truncate: \(String(cString: strerror(errno)))") }
    }

    private func writeBlock(_ bytes: Int) -> Int32? {
        var done = 0
        while done < bytes {
            let wrote = write(fd, block + done, bytes - done)
            if wrote < 0 {
                if errno == EINTR { continue }
                return -errno
            }
            done += wrote
        }
        length += Int64(bytes)
        filled = 0
        return nil
    }
}
