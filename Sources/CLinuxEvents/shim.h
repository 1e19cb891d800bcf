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

#include <string.h>
#include <sys/socket.h>

// The receive window a TCP peer advertises now, in bytes (Linux's tcpi_snd_wnd, since 6.2), or
// -1 where the socket is not TCP or the kernel does not say. What the peer's reader has not yet
// taken from its own buffer shrinks it: the sender cannot see that data otherwise (it is
// acknowledged). glibc's struct tcp_info stops before the field and the kernel's clashes with
// it, so it is read at its offset in the kernel's structure, which only ever grows at its end.
static inline long vigil_peer_window(int socket) {
    enum { tcp_info_snd_wnd_offset = 228, tcp_info_option = 11 /* TCP_INFO */ };
    unsigned char info[512];
    socklen_t length = sizeof(info);
    memset(info, 0, sizeof(info));
    if (getsockopt(socket, 6 /* IPPROTO_TCP */, tcp_info_option, info, &length) != 0) return -1;
    if (length < tcp_info_snd_wnd_offset + 4) return -1;
    unsigned int window;
    memcpy(&window, info + tcp_info_snd_wnd_offset, 4);
    return (long)window;
}
