/*
 * Shared helpers of the postpack guest workloads (see ppguest.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "ppguest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

double pp_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return;
        }
        buf += n;
        len -= (size_t)n;
    }
}

void pp_report(const char *prog, const char *event, const char *fmt, ...)
{
    char line[512];
    int n;
    va_list ap;

    n = snprintf(line, sizeof(line), "PP %s %s t=%.6f ", prog, event,
                 pp_now());
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(line) - 2) {
        n = sizeof(line) - 2;
    }
    line[n++] = '\n';
    write_all(STDOUT_FILENO, line, (size_t)n);
}

void pp_die(const char *prog, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++) {
        if (*p == ' ') {
            *p = '_';
        }
    }
    pp_report(prog, "error", "msg=%s", msg);
    exit(2);
}

bool pp_opt(const char *arg, const char *name, const char **value)
{
    size_t n = strlen(name);

    if (strncmp(arg, "--", 2) != 0 || strncmp(arg + 2, name, n) != 0 ||
        arg[2 + n] != '=') {
        return false;
    }
    *value = arg + 3 + n;
    return true;
}

uint64_t pp_parse_u64(const char *prog, const char *name, const char *s)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-') {
        pp_die(prog, "--%s: '%s' is not an unsigned integer", name, s);
    }
    return v;
}

void *pp_alloc(const char *prog, size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

    if (p == MAP_FAILED) {
        pp_die(prog, "cannot allocate %zu MiB: %s", bytes / PP_MIB,
               strerror(errno));
    }
    /* Keep transparent huge pages out: page-granular tests want 4 KiB. */
    madvise(p, bytes, MADV_NOHUGEPAGE);
    return p;
}

static char cmd_buf[256];
static size_t cmd_len;
static char cmd_line[256];

const char *pp_poll_command(void)
{
    static bool nonblock;

    if (!nonblock) {
        int fl = fcntl(STDIN_FILENO, F_GETFL);
        if (fl >= 0) {
            fcntl(STDIN_FILENO, F_SETFL, fl | O_NONBLOCK);
        }
        nonblock = true;
    }
    for (;;) {
        char *nl = memchr(cmd_buf, '\n', cmd_len);
        if (!nl) {
            nl = memchr(cmd_buf, '\r', cmd_len);
        }
        if (nl) {
            size_t n = (size_t)(nl - cmd_buf);
            memcpy(cmd_line, cmd_buf, n);
            cmd_line[n] = '\0';
            memmove(cmd_buf, nl + 1, cmd_len - n - 1);
            cmd_len -= n + 1;
            if (n == 0) {
                continue;
            }
            return cmd_line;
        }
        if (cmd_len == sizeof(cmd_buf)) {
            cmd_len = 0; /* overlong garbage: drop it */
        }
        ssize_t r = read(STDIN_FILENO, cmd_buf + cmd_len,
                         sizeof(cmd_buf) - cmd_len);
        if (r <= 0) {
            return NULL;
        }
        cmd_len += (size_t)r;
    }
}

uint64_t pp_gpa(const void *addr)
{
    uint64_t entry = 0;
    uintptr_t va = (uintptr_t)addr;
    int fd = open("/proc/self/pagemap", O_RDONLY);

    if (fd < 0) {
        return 0;
    }
    if (pread(fd, &entry, sizeof(entry),
              (off_t)(va / PP_PAGE * sizeof(entry))) != sizeof(entry)) {
        entry = 0;
    }
    close(fd);
    if (!(entry & (1ULL << 63))) {
        return 0;
    }
    return (entry & ((1ULL << 55) - 1)) * PP_PAGE + va % PP_PAGE;
}
