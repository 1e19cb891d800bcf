// Linux's readiness and wake-up calls, which Swift's Glibc module leaves out: the relay's
// fan-out waits on epoll for the sockets of all its players at once.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>

// Bytes written to a socket that its reader has not taken yet (TCP: not yet acknowledged;
// a Unix socket: not yet read), or -1.
static inline int vigil_unread_bytes(int socket) {
    int count = 0;
    return ioctl(socket, SIOCOUTQ, &count) == 0 ? count : -1;
}

#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

// A TCP sender's view of its peer: the receive window the peer advertises now (bytes), and
// how long (µs, since the connection began) sending waited on that window. 0, or -1 when the
// socket is not TCP (a Unix socket's SIOCOUTQ already counts what its reader has not taken)
// or the kernel is older than 6.2.
//
// Read from TCP_INFO as bytes: glibc's `struct tcp_info` stops before these fields, and
// <linux/tcp.h> cannot sit beside it in Swift's modules. Linux's `struct tcp_info` only ever
// grows at its end, so where a field is never moves.
static inline int vigil_peer_window(int socket, unsigned int *window, unsigned long long *limitedMicroseconds) {
    enum { rwnd_limited_at = 176, snd_wnd_at = 228 };
    unsigned char info[256];
    socklen_t length = sizeof info;
    if (getsockopt(socket, IPPROTO_TCP, 11 /* TCP_INFO */, info, &length) != 0 || length < snd_wnd_at + 4) return -1;
    memcpy(window, info + snd_wnd_at, sizeof *window);
    memcpy(limitedMicroseconds, info + rwnd_limited_at, sizeof *limitedMicroseconds);
    return 0;
}

#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <unistd.h>

// A memory file (memfd), close-on-exec: the relay's fan-out writes each camera's bytes into one
// once and sends its players ranges of it. -1 on failure.
static inline int vigil_memory_file(const char *name) {
    return (int)syscall(SYS_memfd_create, name, 1u /* MFD_CLOEXEC */);
}

// Gives back a memory file's pages in [offset, offset + length) (FALLOC_FL_PUNCH_HOLE, keeping
// its size); 0, or -1.
static inline int vigil_punch_hole(int file, long long offset, long long length) {
    return (int)syscall(SYS_fallocate, file, 3 /* FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE */, offset, length);
}

// sendfile(2) from `file` at `offset` to `socket`: the bytes sent (the offset moved past them), or -1.
static inline long vigil_send_file(int socket, int file, long long *offset, unsigned long count) {
    off_t at = (off_t)*offset;
    ssize_t sent = sendfile(socket, file, &at, count);
    *offset = (long long)at;
    return (long)sent;
}
