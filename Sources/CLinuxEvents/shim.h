// Linux's readiness and wake-up calls, which Swift's Glibc module leaves out: the relay's
// fan-out waits on epoll for the sockets of all its players at once.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
