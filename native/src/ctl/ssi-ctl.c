/* ssi-ctl: `ssi checkpoint` (full or incremental) and `ssi restart --detach` without a JVM. The `ssi` script
 * runs it for those two commands, because a checkpoint or restart of a small application takes less time
 * than the start of the Java CLI (which, started beside a checkpoint, also takes CPU from its freeze). It speaks the control protocol (docs/ARCHITECTURE.md "Control protocol", coded in Java
 * in ssi.comm.control) and prints exactly what the Java commands (launcher/.../CheckpointCommand.java,
 * RestartCommand.java) print, with the same exit status.
 *
 * It handles only the plain, well-formed command lines. Anything else (--help, an option it does not
 * know, a usage error, a path that is not plain ASCII, a node it cannot connect to) it leaves to the
 * Java CLI, which has every message: it exits with SSI_CTL_DELEGATE before sending anything, and the
 * script then runs the Java command. Once a request is sent, the result is its own (0 or 1).
 *
 * Single-threaded; no state beyond one request. */
#include "ctl_wire.h"
#include <errno.h>
#include <langinfo.h>
#include <limits.h>
#include <locale.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SSI_CTL_DELEGATE 64           /* "not mine": the script runs the Java CLI instead */
#define CTL_CHECKPOINT 8
#define CTL_RESTART 9
#define CTL_MAX_FRAME (16u << 20)     /* ControlCodec.MAX_FRAME */
#define TIMEOUT_MS (30 * 60 * 1000)   /* CheckpointCommand/RestartCommand.TIMEOUT: 30 min */
#define DEFAULT_RUN_DIR "/run/ssi"

static int utf8_out = -1; /* stdout/stderr take UTF-8 (else non-ASCII prints as '?', as Java's encoder does) */

/* Whether output takes UTF-8, asked of the locale only when a non-ASCII character is to be printed
 * (loading the locale costs more than the rest of a small request's client side). */
static int utf8_output(void)
{
    if (utf8_out < 0) {
        setlocale(LC_CTYPE, "");
        utf8_out = !strcmp(nl_langinfo(CODESET), "UTF-8");
    }
    return utf8_out;
}

static void delegate(void) { exit(SSI_CTL_DELEGATE); }

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        delegate();
    return p;
}

static int plain_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return 0;
    return 1;
}

/* A non-negative int in decimal, as Integer.parseInt takes it (an optional '+'); -1 if not. */
static int parse_int(const char *s)
{
    if (*s == '+')
        s++;
    if (!*s)
        return -1;
    long v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
        if (v > INT_MAX)
            return -1;
    }
    return (int)v;
}

/* Path.of(p).toString(): repeated slashes collapsed, a trailing slash dropped. */
static char *java_path_string(const char *p)
{
    size_t n = strlen(p);
    char *out = xmalloc(n + 1), *o = out;
    for (const char *s = p; *s; s++) {
        if (*s == '/' && o > out && o[-1] == '/')
            continue;
        *o++ = *s;
    }
    if (o - out > 1 && o[-1] == '/')
        o--;
    *o = 0;
    return out;
}

/* Path.of(p).toAbsolutePath().normalize(): against the cwd, "." dropped, ".." taken lexically. */
static char *java_abs_normalize(const char *p)
{
    char *joined;
    if (p[0] == '/') {
        joined = strdup(p);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd) || !plain_ascii(cwd))
            delegate();
        joined = xmalloc(strlen(cwd) + strlen(p) + 2);
        sprintf(joined, "%s/%s", cwd, p);
    }
    if (!joined)
        delegate();
    size_t n = strlen(joined);
    char **seg = xmalloc((n + 1) * sizeof *seg);
    size_t k = 0;
    for (char *tok = strtok(joined, "/"); tok; tok = strtok(NULL, "/")) {
        if (!strcmp(tok, "."))
            continue;
        if (!strcmp(tok, "..")) {
            if (k > 0)
                k--;
            continue;
        }
        seg[k++] = tok;
    }
    char *out = xmalloc(n + 2), *o = out;
    if (k == 0)
        *o++ = '/';
    for (size_t i = 0; i < k; i++) {
        *o++ = '/';
        size_t l = strlen(seg[i]);
        memcpy(o, seg[i], l);
        o += l;
    }
    *o = 0;
    free(seg);
    free(joined);
    return out;
}

/* EnclosingNode.detect(): inside a node, pid 1 is `.../ssi-shim --node N --run-dir DIR ...`. */
static int enclosing(int *node, char **run_dir)
{
    FILE *f = fopen("/proc/1/cmdline", "r");
    if (!f)
        return 0;
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    if (n == sizeof buf - 1)
        return 0;
    buf[n] = 0;
    char *args[1024];
    int argc = 0;
    for (size_t i = 0; i < n && argc < 1024; i += strlen(buf + i) + 1)
        args[argc++] = buf + i;
    if (argc == 0 || argc == 1024)
        return 0;
    size_t l0 = strlen(args[0]);
    if (l0 < 8 || strcmp(args[0] + l0 - 8, "ssi-shim") != 0)
        return 0;
    int nd = -1;
    char *rd = NULL;
    for (int i = 1; i + 1 < argc; i++) {
        if (!strcmp(args[i], "--"))
            break;
        if (!strcmp(args[i], "--node")) {
            nd = parse_int(args[i + 1]);
            if (nd < 0)
                return 0;
        } else if (!strcmp(args[i], "--run-dir")) {
            rd = args[i + 1];
        }
    }
    if (nd < 0 || !rd)
        return 0;
    *node = nd;
    *run_dir = rd;
    return 1;
}

/* ---- DataOutputStream / DataInputStream encodings (big endian; writeUTF's modified UTF-8) */

struct buf { uint8_t *p; size_t len, cap; };

static void put(struct buf *b, const void *d, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            delegate();
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

static void put_u16(struct buf *b, unsigned v) { uint8_t x[2]; ctl_put16(x, (uint16_t)v); put(b, x, 2); }
static void put_u32(struct buf *b, uint32_t v) { uint8_t x[4]; ctl_put32(x, v); put(b, x, 4); }

/* Plain ASCII without NUL is the same in modified UTF-8 (callers checked it). */
static void put_utf(struct buf *b, const char *s)
{
    size_t n = strlen(s);
    if (n > 65535)
        delegate();
    put_u16(b, (unsigned)n);
    put(b, s, n);
}

struct in { const uint8_t *p; size_t len, at; int bad; };

static const uint8_t *take(struct in *in, size_t n)
{
    if (in->bad || in->len - in->at < n) {
        in->bad = 1;
        return NULL;
    }
    const uint8_t *p = in->p + in->at;
    in->at += n;
    return p;
}

static uint64_t get_be(struct in *in, int n)
{
    const uint8_t *p = take(in, n);
    uint64_t v = 0;
    for (int i = 0; p && i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* readUTF, as bytes for this terminal: modified UTF-8 to UTF-8 (NUL as C0 80, supplementary characters
 * as surrogate pairs), or with every non-ASCII character as '?' when the locale is not UTF-8. */
static char *get_utf(struct in *in)
{
    size_t n = get_be(in, 2);
    const uint8_t *s = take(in, n);
    char *out = xmalloc(n * 2 + 1), *o = out;
    for (size_t i = 0; s && i < n;) {
        uint8_t c = s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : 0;
        if (len == 0 || i + len > n) {
            in->bad = 1;
            break;
        }
        uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1fu) << 6 | (s[i + 1] & 0x3f)
                                               : (c & 0x0fu) << 12 | (s[i + 1] & 0x3fu) << 6 | (s[i + 2] & 0x3f);
        i += len;
        if (cp >= 0xd800 && cp < 0xdc00 && i + 3 <= n && s[i] == 0xed && (s[i + 1] & 0xf0) == 0xb0) {
            uint32_t lo = (s[i + 1] & 0x0fu) << 6 | (s[i + 2] & 0x3f) | 0xdc00;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            i += 3;
        } else if (cp >= 0xd800 && cp < 0xe000) {
            cp = '?'; /* a lone surrogate: Java's encoder writes '?' */
        }
        if (cp < 0x80) {
            *o++ = (char)cp;
        } else if (!utf8_output()) {
            *o++ = '?';
        } else if (cp < 0x800) {
            *o++ = (char)(0xc0 | cp >> 6);
            *o++ = (char)(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            *o++ = (char)(0xe0 | cp >> 12);
            *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
            *o++ = (char)(0x80 | (cp & 0x3f));
        } else {
            *o++ = (char)(0xf0 | cp >> 18);
            *o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
            *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
            *o++ = (char)(0x80 | (cp & 0x3f));
        }
    }
    *o = 0;
    return out;
}

/* Java's String.trim(): every char <= ' ' off both ends. */
static char *trim(char *s)
{
    while (*s && (unsigned char)*s <= ' ')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (unsigned char)s[n - 1] <= ' ')
        s[--n] = 0;
    return s;
}

/* ---- the exchange */

static const char *strerror_ctl(int status, char *tmp, size_t cap)
{
    switch (status) { /* launcher Errno.strerror: the statuses the protocol defines */
    case 1: return "Operation not permitted";
    case 2: return "No such file or directory";
    case 3: return "No such process";
    case 5: return "Input/output error";
    case 19: return "No such node";
    case 22: return "Invalid argument";
    case 71: return "Protocol error";
    case 17: return "File exists";
    case 95: return "Operation not supported";
    default: snprintf(tmp, cap, "error %d", status); return tmp;
    }
}

/* bytes in tenths of a MiB as String.format("%.1f", bytes / 1048576.0) rounds them (half up): in integers, exactly */
static int64_t mib_tenths(int64_t bytes) { return (bytes * 10 + 524288) / 1048576; }

static int fail(const char *what, const char *why, const char *todo)
{
    fprintf(stderr, "ssi: %s: %s; %s\n", what, why, todo);
    return 1;
}

int main(int argc, char **argv)
{
    const char *run_dir_opt = NULL, *node_opt = NULL, *output = NULL, *parent_opt = NULL, *positional = NULL;
    int cmd = 0, stop = 0, detach = 0, incremental = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        const char *val = NULL;
        if (!strcmp(a, "--run-dir") || !strncmp(a, "--run-dir=", 10)) {
            slot = &run_dir_opt;
        } else if (!strcmp(a, "--node") || !strncmp(a, "--node=", 7)) {
            slot = &node_opt;
        } else if (cmd == CTL_CHECKPOINT && (!strcmp(a, "--output") || !strncmp(a, "--output=", 9)
                                             || (!strncmp(a, "-o", 2) && a[2] != '='))) {
            slot = &output;
        } else if (cmd == CTL_CHECKPOINT && (!strcmp(a, "--parent") || !strncmp(a, "--parent=", 9))) {
            slot = &parent_opt;
        } else if (cmd == CTL_CHECKPOINT && !strcmp(a, "--stop")) {
            if (stop)
                delegate(); /* given twice: picocli's message */
            stop = 1;
            continue;
        } else if (cmd == CTL_CHECKPOINT && (!strcmp(a, "--incremental") || !strcmp(a, "-i"))) {
            if (incremental)
                delegate();
            incremental = 1;
            continue;
        } else if (cmd == CTL_RESTART && (!strcmp(a, "--detach") || !strcmp(a, "-d"))) {
            if (detach)
                delegate();
            detach = 1;
            continue;
        } else if (a[0] == '-') {
            delegate(); /* --help, --, anything else */
        } else if (!cmd) {
            if (!strcmp(a, "checkpoint"))
                cmd = CTL_CHECKPOINT;
            else if (!strcmp(a, "restart"))
                cmd = CTL_RESTART;
            else
                delegate();
            continue;
        } else {
            if (positional)
                delegate();
            positional = a;
            continue;
        }
        if (*slot)
            delegate();
        const char *eq = a[1] == '-' ? strchr(a, '=') : (a[2] ? a + 1 : NULL);
        if (eq) {
            val = eq + 1;
        } else {
            if (i + 1 >= argc)
                delegate();
            val = argv[++i];
        }
        *slot = val;
    }
    if (!cmd || !positional)
        delegate();
    /* `ssi restart` without --detach runs in the foreground through ssi-run --restart (the script) */
    if (cmd == CTL_RESTART && !detach)
        delegate();

    /* --run-dir, else $SSI_RUN_DIR, else the enclosing node's, else /run/ssi; --node, else $SSI_NODE,
     * else the enclosing node, else 1 (Ssi.runDir(), Ssi.node()) */
    int enc_node = 0;
    char *enc_dir = NULL;
    int have_enc = -1;
    const char *rd = run_dir_opt;
    if (!rd || !*rd)
        rd = getenv("SSI_RUN_DIR");
    if (!rd || !*rd) {
        have_enc = enclosing(&enc_node, &enc_dir);
        rd = have_enc ? enc_dir : DEFAULT_RUN_DIR;
    }
    if (!plain_ascii(rd))
        delegate();
    char *run_dir = java_abs_normalize(rd);
    int node;
    if (node_opt) {
        node = parse_int(node_opt);
    } else {
        const char *env = getenv("SSI_NODE");
        char *t = env ? trim(strdup(env)) : NULL;
        if (t && *t) {
            node = parse_int(t);
        } else {
            if (have_enc < 0)
                have_enc = enclosing(&enc_node, &enc_dir);
            node = have_enc ? enc_node : 1;
        }
    }
    if (node < 1 || node > 255)
        delegate();

    /* the request, and the words the Java command uses for it */
    struct buf req = { 0 };
    int gpid = 0;
    char *what;
    const char *nothing;
    put_u16(&req, cmd);
    if (cmd == CTL_CHECKPOINT) {
        gpid = parse_int(positional);
        if (gpid < 0 || positional[0] == '+')
            delegate();
        if (output && (!*output || !plain_ascii(output)))
            delegate();
        if (parent_opt && (!*parent_opt || !plain_ascii(parent_opt)))
            delegate();
        char *dir = output ? java_abs_normalize(output) : strdup("");
        what = xmalloc(32);
        snprintf(what, 32, "checkpoint %d", gpid);
        put_u32(&req, (uint32_t)gpid);
        put_utf(&req, dir);
        uint8_t s = (uint8_t)stop;
        put(&req, &s, 1);
        /* --parent implies --incremental */
        incremental |= parent_opt != NULL;
        uint8_t incr = (uint8_t)incremental;
        put(&req, &incr, 1);
        put_utf(&req, parent_opt ? java_abs_normalize(parent_opt) : "");
        nothing = "nothing was written";
    } else {
        if (!*positional || !plain_ascii(positional))
            delegate();
        char *shown = java_path_string(positional);
        what = xmalloc(strlen(shown) + 16);
        sprintf(what, "restart %s", shown);
        put_utf(&req, java_abs_normalize(positional));
        nothing = "nothing was started";
    }

    char sock_path[PATH_MAX + 32], log_path[PATH_MAX + 32];
    snprintf(sock_path, sizeof sock_path, "%s/node-%d.ctl", run_dir, node);
    snprintf(log_path, sizeof log_path, "%s/node-%d.log", run_dir, node);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(sock_path) >= sizeof sa.sun_path)
        delegate();
    strcpy(sa.sun_path, sock_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        delegate(); /* the Java CLI explains a node it cannot reach */

    /* From here on the request is ours. */
    char why[PATH_MAX + 256], todo[PATH_MAX + 128];
    snprintf(todo, sizeof todo, "see %s for what its daemon did", log_path);
    struct buf frame = { 0 };
    put_u32(&frame, (uint32_t)req.len);
    put(&frame, req.p, req.len);
    if (ctl_write_all(fd, frame.p, frame.len) < 0) {
        snprintf(why, sizeof why, "node %d did not answer: %s", node, strerror(errno));
        return fail(what, why, todo);
    }
    long long deadline = ctl_now_ms() + TIMEOUT_MS;
    uint8_t len4[4];
    int rc = ctl_read_all(fd, len4, 4, deadline);
    uint32_t n = ctl_get32(len4);
    uint8_t *body = NULL;
    if (rc == 0) {
        if (n > CTL_MAX_FRAME) {
            snprintf(why, sizeof why, "node %d did not answer: bad reply frame length %d from %s", node, (int)n, sock_path);
            return fail(what, why, todo);
        }
        body = xmalloc(n ? n : 1);
        rc = ctl_read_all(fd, body, n, deadline);
    }
    if (rc == -2) {
        snprintf(why, sizeof why, "node %d did not answer: no answer within %d s", node, TIMEOUT_MS / 1000);
        return fail(what, why, todo);
    }
    if (rc < 0) {
        snprintf(why, sizeof why, "node %d did not answer: node daemon at %s closed the connection", node, sock_path);
        return fail(what, why, todo);
    }
    close(fd);

    struct in in = { body, n, 0, 0 };
    int status = (int)get_be(&in, 2);
    if (!in.bad && status != 0) {
        char *msg = trim(get_utf(&in));
        if (!in.bad) {
            char tmp[32];
            const char *se = strerror_ctl(status, tmp, sizeof tmp);
            char *desc = xmalloc(strlen(se) + strlen(msg) + 4);
            if (*msg)
                sprintf(desc, "%s (%s)", se, msg);
            else
                strcpy(desc, se);
            snprintf(todo, sizeof todo, "%s; see %s for details", nothing, log_path);
            return fail(what, desc, todo);
        }
    }
    if (!in.bad && cmd == CTL_CHECKPOINT) {
        char *dir = get_utf(&in);
        int64_t freeze = (int64_t)get_be(&in, 8);
        int32_t procs = (int32_t)get_be(&in, 4);
        int64_t bytes = (int64_t)get_be(&in, 8);
        char *parent = get_utf(&in);   /* "" for a full image */
        int64_t in_parent = (int64_t)get_be(&in, 8); /* bytes in the parent: none for a full image */
        if (!in.bad && in.at == in.len && freeze >= 0 && bytes >= 0 && in_parent >= 0 && (incremental || !*parent)) {
            int64_t tenths = mib_tenths(bytes);
            printf("checkpoint of %d (%d process%s, %lld.%lld MiB) written to %s; frozen %lld ms%s\n", gpid,
                   (int)procs, procs == 1 ? "" : "es", (long long)(tenths / 10), (long long)(tenths % 10), dir,
                   (long long)((freeze + 500) / 1000), stop ? "; application stopped" : "");
            if (incremental) {
                tenths = mib_tenths(in_parent);
                printf("incremental: %lld.%lld MiB of unchanged pages are in the parent %s\n", (long long)(tenths / 10),
                       (long long)(tenths % 10), parent);
            }
            return fflush(stdout) == 0 ? 0 : 1;
        }
    } else if (!in.bad && cmd == CTL_RESTART) {
        int32_t got = (int32_t)get_be(&in, 4);
        int64_t micros = (int64_t)get_be(&in, 8);
        if (!in.bad && in.at == in.len && micros >= 0) {
            printf("restarted %d on node %d in %lld ms\n", (int)got, node, (long long)((micros + 500) / 1000));
            return fflush(stdout) == 0 ? 0 : 1;
        }
    }
    snprintf(why, sizeof why, "node %d did not answer: the reply does not match the control protocol", node);
    return fail(what, why, todo);
}
