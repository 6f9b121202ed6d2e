/*
 * A small QMP client, synchronous or driven by a GLib main loop.
 *
 * One PpQmp is one connection to one QEMU monitor.  Connecting reads the
 * greeting and negotiates capabilities (bounded, synchronous: QEMU answers
 * at once when it is alive).  Then either:
 *  - synchronous use: pp_qmp_execute() sends a command with a fresh id and
 *    waits (bounded) for its reply; events that arrive meanwhile are
 *    queued and handed out by pp_qmp_next_event(); or
 *  - asynchronous use: pp_qmp_attach() hands the connection to a GLib main
 *    context; pp_qmp_send() registers a reply callback with its own
 *    timeout, events go to the attach-time callback, and a closed
 *    connection is reported once.  The synchronous calls must not be used
 *    after attaching.
 *
 * Everything QEMU sends is treated as untrusted: a message larger than
 * PP_QMP_MAX_MESSAGE, malformed JSON, a reply to an id never sent, or EOF
 * in the middle of a message all fail with a clear error and leave the
 * connection dead (every later call fails with PP_ERROR_DISCONNECTED).
 * Replies to commands that already timed out are recognised by their id
 * and dropped.
 *
 * Ownership: json_object results are new references owned by the caller
 * (json_object_put, or g_autoptr(json_object)); @args passed to
 * pp_qmp_execute() is always consumed.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef PP_QMP_H
#define PP_QMP_H

#include <glib.h>
#include <json-c/json.h>
#include <stdbool.h>

#define PP_QMP_MAX_MESSAGE (8 * 1024 * 1024)

typedef struct PpQmp PpQmp;

G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_object, json_object_put)

/* Connect to the unix socket at @path and negotiate; NULL on error. */
PpQmp *pp_qmp_connect(const char *path, int timeout_ms, GError **errp);

/* Take over a connected socket @fd (tests use a socketpair) and negotiate. */
PpQmp *pp_qmp_new_fd(int fd, int timeout_ms, GError **errp);

/*
 * Run @command with @args (NULL for none; consumed).  Returns the "return"
 * member (a new reference; an empty object when QEMU returned {}), or NULL
 * with PP_ERROR_COMMAND carrying QEMU's description, PP_ERROR_TIMEOUT,
 * PP_ERROR_PROTOCOL or PP_ERROR_DISCONNECTED.
 */
json_object *pp_qmp_execute(PpQmp *qmp, const char *command,
                            json_object *args, int timeout_ms, GError **errp);

/*
 * The next queued or arriving event whose name is @name (any event when
 * NULL), waiting up to @timeout_ms (0: only what is already received).
 * Events of other names that are skipped stay queued.  NULL with
 * PP_ERROR_TIMEOUT when none came.
 */
json_object *pp_qmp_next_event(PpQmp *qmp, const char *name, int timeout_ms,
                               GError **errp);

/* Event timestamp (seconds + microseconds) as microseconds since the epoch. */
gint64 pp_qmp_event_time_us(json_object *event);

/* The greeting's QEMU version as "major.minor.micro" (for reports only). */
const char *pp_qmp_version(PpQmp *qmp);

bool pp_qmp_is_connected(PpQmp *qmp);

/* Asynchronous mode. */
typedef void (*PpQmpReplyFunc)(PpQmp *qmp, json_object *ret,
                               const GError *err, gpointer opaque);
typedef void (*PpQmpEventFunc)(PpQmp *qmp, const char *name,
                               json_object *data, gint64 time_us,
                               gpointer opaque);
typedef void (*PpQmpClosedFunc)(PpQmp *qmp, const GError *why,
                                gpointer opaque);

/*
 * Switch @qmp to asynchronous mode on @ctx (NULL: the default context).
 * Events already queued are delivered from the main loop.  @on_closed is
 * called once when the connection dies (after every pending reply
 * callback got PP_ERROR_DISCONNECTED).  Callbacks may call pp_qmp_free().
 */
void pp_qmp_attach(PpQmp *qmp, GMainContext *ctx, PpQmpEventFunc on_event,
                   PpQmpClosedFunc on_closed, gpointer opaque);

/*
 * Send @command with @args (consumed; may be NULL).  @cb (may be NULL)
 * gets exactly one call: the "return" value (borrowed: take a reference
 * to keep it) or an error (PP_ERROR_COMMAND, PP_ERROR_TIMEOUT after
 * @timeout_ms, PP_ERROR_DISCONNECTED, PP_ERROR_PROTOCOL).  A failed send
 * is reported through @cb from the main loop, never from inside this call.
 */
void pp_qmp_send(PpQmp *qmp, const char *command, json_object *args,
                 int timeout_ms, PpQmpReplyFunc cb, gpointer opaque);

/*
 * Connect to @path and negotiate without blocking.  Returns the
 * connection at once (NULL with @errp when the connect itself fails); it
 * belongs to the caller, and freeing it before it is ready cancels the
 * handshake without a call.  @on_ready gets one call from @ctx's loop:
 * @err NULL, and from then on events go to @on_event and a close to
 * @on_closed; or an error (no greeting or capabilities within
 * @timeout_ms, a handshake the peer broke or refused), after which the
 * connection is dead and the caller frees it (it may from the callback).
 * Commands sent before it is ready wait and go out after the handshake
 * (or fail with it, from the loop, unless the connection is freed).
 */
typedef void (*PpQmpReadyFunc)(PpQmp *qmp, const GError *err,
                               gpointer opaque);
PpQmp *pp_qmp_connect_async(const char *path, GMainContext *ctx,
                            int timeout_ms, PpQmpEventFunc on_event,
                            PpQmpClosedFunc on_closed, PpQmpReadyFunc on_ready,
                            gpointer opaque, GError **errp);
/* The same on a connected socket @fd (taken over; tests use a
 * socketpair). */
PpQmp *pp_qmp_new_fd_async(int fd, GMainContext *ctx, int timeout_ms,
                           PpQmpEventFunc on_event, PpQmpClosedFunc on_closed,
                           PpQmpReadyFunc on_ready, gpointer opaque);

void pp_qmp_free(PpQmp *qmp);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PpQmp, pp_qmp_free)

#endif
