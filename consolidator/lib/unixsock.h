/*
 * Unix stream socket helpers shared by the QMP client, the launcher, the
 * daemon's control socket and the CLI.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef PP_UNIXSOCK_H
#define PP_UNIXSOCK_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>

/* Connect to the socket at @path; a close-on-exec fd, or -1 with an error
 * naming @what (e.g. "QMP socket") and the path. */
int pp_unix_connect(const char *path, const char *what, GError **errp);

/* Write all of @buf (retrying on EINTR, no SIGPIPE); false with errno set. */
bool pp_send_all(int fd, const void *buf, size_t len);

#endif
