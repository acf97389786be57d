/* Frame I/O for the launch and link sockets: one header + payload per sendmsg, optional SCM_RIGHTS
 * and SCM_CREDENTIALS riding on the first byte. Callers own the sockets; nothing here is global. */
#include "ssi_proto.h"
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>

static int write_all(int sock, const char *p, size_t n, struct msghdr *first)
{
    while (n > 0) {
        ssize_t w;
        if (first) {
            struct iovec iov = { (void *)p, n };
            first->msg_iov = &iov;
            first->msg_iovlen = 1;
            w = sendmsg(sock, first, MSG_NOSIGNAL);
        } else {
            w = send(sock, p, n, MSG_NOSIGNAL);
        }
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        first = NULL;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int ssi_send_frame(int sock, uint16_t type, uint32_t req_id, const void *payload, size_t len,
                   int fd_to_pass, int with_creds)
{
    char frame[sizeof(struct ssi_hdr) + 4096];
    size_t total = sizeof(struct ssi_hdr) + len;
    if (total > SSI_MAX_FRAME)
        return -EMSGSIZE;
    struct ssi_hdr h = { .len = (uint32_t)total, .type = type, .flags = 0, .req_id = req_id };
    union { char buf[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(struct ucred))]; struct cmsghdr align; } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct msghdr mh = { 0 };
    size_t ctl_len = 0;
    if (fd_to_pass >= 0 || with_creds) {
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof ctl.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        if (fd_to_pass >= 0) {
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(c), &fd_to_pass, sizeof(int));
            ctl_len += CMSG_SPACE(sizeof(int));
            c = CMSG_NXTHDR(&mh, c);
        }
        if (with_creds) {
            struct ucred cr = { getpid(), geteuid(), getegid() };
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_CREDENTIALS;
            c->cmsg_len = CMSG_LEN(sizeof cr);
            memcpy(CMSG_DATA(c), &cr, sizeof cr);
            ctl_len += CMSG_SPACE(sizeof cr);
        }
        mh.msg_controllen = ctl_len;
    }
    if (total <= sizeof frame) {
        memcpy(frame, &h, sizeof h);
        if (len)
            memcpy(frame + sizeof h, payload, len);
        return write_all(sock, frame, total, ctl_len ? &mh : NULL);
    }
    int rc = write_all(sock, (const char *)&h, sizeof h, ctl_len ? &mh : NULL);
    return rc ? rc : write_all(sock, payload, len, NULL);
}

int ssi_recv_frame(int sock, void *buf, size_t cap, int *fd_out, struct ucred *cred_out)
{
    if (fd_out)
        *fd_out = -1;
    if (cred_out)
        cred_out->pid = -1;
    if (cap < sizeof(struct ssi_hdr))
        return -EINVAL;
    size_t got = 0, want = sizeof(struct ssi_hdr);
    while (got < want) {
        union { char buf[CMSG_SPACE(sizeof(int) * 4) + CMSG_SPACE(sizeof(struct ucred))]; struct cmsghdr align; } ctl;
        struct iovec iov = { (char *)buf + got, want - got };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf };
        ssize_t r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return got ? -EPROTO : -ECONNRESET;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
            if (c->cmsg_level != SOL_SOCKET)
                continue;
            if (c->cmsg_type == SCM_RIGHTS) {
                int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
                int fds[4];
                memcpy(fds, CMSG_DATA(c), sizeof(int) * (n > 4 ? 4 : n));
                for (int i = 0; i < n && i < 4; i++) {
                    if (fd_out && *fd_out < 0)
                        *fd_out = fds[i];
                    else
                        close(fds[i]);
                }
            } else if (c->cmsg_type == SCM_CREDENTIALS && cred_out) {
                memcpy(cred_out, CMSG_DATA(c), sizeof *cred_out);
            }
        }
        got += (size_t)r;
        if (got == sizeof(struct ssi_hdr)) {
            const struct ssi_hdr *h = buf;
            if (h->len < sizeof(struct ssi_hdr) || h->len > SSI_MAX_FRAME || h->len > cap)
                return -EMSGSIZE;
            want = h->len;
        }
    }
    return 0;
}
