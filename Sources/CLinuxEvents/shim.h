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
