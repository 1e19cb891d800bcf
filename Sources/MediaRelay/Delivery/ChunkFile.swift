import CLinuxEvents
import Glibc
import Synchronization

/// One camera's chunks of one kind as a memory file (memfd): each chunk is written into it once,
/// and players are sent ranges of it with `sendfile`, which hands the kernel the file's pages
/// rather than copying each player's bytes into its socket as `sendmsg` does. On loopback that
/// copy was a quarter of the relay's CPU per Gbit; the reader's receive still copies once, as
/// before. (nginx-rtmp shares its buffers between players too, but copies them into every
/// socket.)
///
/// Pages are given back once every chunk in them is gone (a hole punched), and only whole pages
/// below the oldest chunk still alive: a socket may still hold a gone chunk's bytes, and
/// punching a whole page takes it out of the file but leaves it to the sockets that hold it,
/// whereas a partial page would be zeroed in place, under them.
final class ChunkFile: @unchecked Sendable {  // @unchecked: `state` is in a Mutex; `descriptor` never changes.
    let descriptor: Int32

    private struct State {
        /// Where the next chunk is written.
        var end = 0
        /// The chunks written, by where each starts (in order), and whether each is gone yet;
        /// those before `first` are all gone.
        var chunks: [(offset: Int, gone: Bool)] = []
        var first = 0
        /// Everything before this was given back.
        var punched = 0
    }

    private let state = Mutex(State())
    private static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
    /// Pages are given back in steps of at least this much (one system call per step).
    private static let punchStep = 1 << 20

    /// A new memory file, or nil where the system has none (the fan-out then copies as before).
    init?(name: String) {
        let descriptor = vigil_memory_file(name)
        guard descriptor >= 0 else { return nil }
        self.descriptor = descriptor
    }

    deinit {
        close(descriptor)
    }

    /// Writes `count` bytes at `base` after the last chunk; where they start, or nil if the file
    /// could not take them (out of memory: the chunk is then sent by copying).
    func append(_ base: UnsafeRawPointer, count: Int) -> Int? {
        state.withLock { state in
            var written = 0
            while written < count {
                let result = pwrite(descriptor, base + written, count - written, off_t(state.end + written))
                if result < 0, errno == EINTR { continue }
                guard result > 0 else { return nil }
                written += result
            }
            defer { state.end += count }
            state.chunks.append((state.end, false))
            return state.end
        }
    }

    /// The chunk that starts at `offset` is gone; the pages that only gone chunks used are given back.
    func release(_ offset: Int) {
        state.withLock { state in
            // Chunks go roughly in the order they came: look from the oldest alive.
            var low = state.first, high = state.chunks.count
            while low < high {
                let middle = (low + high) / 2
                if state.chunks[middle].offset < offset { low = middle + 1 } else { high = middle }
            }
            guard low < state.chunks.count, state.chunks[low].offset == offset else { return }
            state.chunks[low].gone = true
            while state.first < state.chunks.count, state.chunks[state.first].gone { state.first += 1 }
            if state.first > 1_024, state.first * 2 > state.chunks.count {
                state.chunks.removeFirst(state.first)
                state.first = 0
            }
            let oldestAlive = state.first < state.chunks.count ? state.chunks[state.first].offset : state.end
            let wholePages = oldestAlive / Self.pageSize * Self.pageSize
            guard wholePages - state.punched >= Self.punchStep else { return }
            if vigil_punch_hole(descriptor, Int64(state.punched), Int64(wholePages - state.punched)) == 0 {
                state.punched = wholePages
            }
        }
    }

    /// Sends `count` bytes of the chunk file `descriptor` from `offset` to `socket` (`sendfile`:
    /// the file's pages, not a copy); the bytes sent, or -1 with `errno` set.
    static func send(_ descriptor: Int32, from offset: Int, count: Int, to socket: Int32) -> Int {
        var at = Int64(offset)
        return vigil_send_file(socket, descriptor, &at, UInt(count))
    }

    /// Bytes the file holds now (written and not given back), for tests.
    var heldBytes: Int {
        state.withLock { $0.end - $0.punched }
    }
}
