/*
 * Unix stream socket helpers (see unixsock.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "unixsock.h"
#include "pp-error.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int pp_unix_connect(const char *path, const char *what, GError **errp)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "%s path '%s' is too long", what, path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int err = errno;
        if (fd >= 0) {
            close(fd);
        }
        g_set_error(errp, PP_ERROR, PP_ERROR_IO, "cannot connect to %s '%s': "
                    "%s", what, path, g_strerror(err));
        errno = err;
        return -1;
    }
    return fd;
}

bool pp_send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            if (n == 0) {
                errno = EPIPE;
            }
            return false;
        }
        p += n;
        len -= (size_t)n;
    }
    return true;
}
