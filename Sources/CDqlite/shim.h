#include <dqlite.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

// dqlite's connection to another member for Raft traffic, as its default one makes it (a
// blocking TCP connect to HOST:PORT), with TCP_NODELAY: without it, a leader's appends waited
// for the peer's delayed ACK (40 ms) once in a few commits. `[IPV6]:PORT` works too.
static int vigil_dqlite_connect(void *arg, const char *address, int *fd) {
    (void)arg;
    char host[256];
    const char *colon = strrchr(address, ':');
    if (colon == NULL || (size_t)(colon - address) >= sizeof host) return DQLITE_ERROR;
    size_t length = (size_t)(colon - address);
    const char *start = address;
    if (length >= 2 && address[0] == '[' && address[length - 1] == ']') {
        start = address + 1;
        length -= 2;
    }
    memcpy(host, start, length);
    host[length] = '\0';
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    struct addrinfo *resolved = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &resolved) != 0 || resolved == NULL) return DQLITE_ERROR;
    int socket_fd = socket(resolved->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (socket_fd < 0) {
        freeaddrinfo(resolved);
        return DQLITE_ERROR;
    }
    int one = 1;
    setsockopt(socket_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int connected = connect(socket_fd, resolved->ai_addr, resolved->ai_addrlen);
    freeaddrinfo(resolved);
    if (connected != 0) {
        close(socket_fd);
        return DQLITE_ERROR;
    }
    *fd = socket_fd;
    return 0;
}
