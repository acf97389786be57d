/* ctl_wire.h. */
#include "ctl_wire.h"
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

void ctl_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

void ctl_put32(uint8_t *p, uint32_t v)
{
    ctl_put16(p, (uint16_t)(v >> 16));
    ctl_put16(p + 2, (uint16_t)v);
}

uint16_t ctl_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

uint32_t ctl_get32(const uint8_t *p)
{
    return (uint32_t)ctl_get16(p) << 16 | ctl_get16(p + 2);
}

int ctl_write_all(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

long long ctl_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int ctl_read_all(int fd, void *buf, size_t n, long long deadline_ms)
{
    uint8_t *p = buf;
    while (n > 0) {
        if (deadline_ms >= 0) {
            long long left = deadline_ms - ctl_now_ms();
            if (left <= 0)
                return -2;
            struct pollfd pfd = { fd, POLLIN, 0 };
            int r = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                return -1;
            if (r == 0)
                return -2;
        }
        ssize_t got = read(fd, p, n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1;
        p += got;
        n -= (size_t)got;
    }
    return 0;
}
