/*
 * libFuzzer harness: the QMP client (qmp.c) and the reply handling the
 * consolidator and ppmig apply to what QEMU says (migqmp.c, ppjson.c).
 *
 * The input is everything a "QEMU" sends on the monitor socket, greeting
 * included; it is written into a socketpair that is then closed, so every
 * read ends.  The client connects (greeting, qmp_capabilities = id 1),
 * runs query-migrate (id 2) and reads every field the daemon reads from
 * such a reply, then drains the events.  The same bytes are replayed in
 * asynchronous mode (a private GMainContext) with two commands in flight.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migqmp.h"
#include "pp-error.h"
#include "ppjson.h"
#include "qmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Everything the daemon reads from a query-migrate reply. */
static void read_reply(json_object *r)
{
    PpPostcopyStats st;
    const char *s;
    gint64 i;
    g_autoptr(GError) err = NULL;

    pp_postcopy_stats_init(&st);
    pp_postcopy_stats_update(&st, r, NULL);
    pp_json_opt_str(r, "status", &s, NULL);
    pp_json_opt_int(r, "ram.transferred", &i, NULL);
    pp_json_opt_int(r, "ram.postcopy-requests", &i, NULL);
    pp_json_int(r, "total-time", NULL);
    pp_mig_listen_port(r, &err);
    pp_qmp_schema_has(r, "x-postcopy-instant");
    g_clear_error(&err);
    pp_hot_set_check(r, NULL, &err);
}

/* A socketpair whose far end (*@peer, to close after the run) holds
 * @data and then EOF; -1 when the input does not fit the socket's buffer
 * (not interesting). */
static int feed(const uint8_t *data, size_t size, int *peer)
{
    int sv[2];
    int big = 1 << 20;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        return -1;
    }
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    if (size && send(sv[1], data, size, MSG_DONTWAIT | MSG_NOSIGNAL) !=
        (ssize_t)size) {
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    /* The client's requests land in sv[1]'s receive buffer, unread;
     * the client reads EOF after @data. */
    shutdown(sv[1], SHUT_WR);
    *peer = sv[1];
    return sv[0];
}

static void sync_mode(const uint8_t *data, size_t size)
{
    int peer = -1;
    int fd = feed(data, size, &peer);
    g_autoptr(GError) err = NULL;
    g_autoptr(PpQmp) q = NULL;
    json_object *ev;

    if (fd < 0) {
        return;
    }
    q = pp_qmp_new_fd(fd, 1000, &err);
    if (!q) {
        close(peer);
        return;
    }
    pp_qmp_version(q);
    g_autoptr(json_object) r = pp_qmp_execute(q, "query-migrate", NULL, 1000,
                                              &err);
    if (r) {
        read_reply(r);
    }
    while ((ev = pp_qmp_next_event(q, NULL, 0, NULL))) {
        json_object *d = NULL;
        const char *st;

        pp_qmp_event_time_us(ev);
        if (pp_json_opt_obj(ev, "data", &d, NULL) && d) {
            pp_json_opt_str(d, "status", &st, NULL);
        }
        json_object_put(ev);
    }
    close(peer);
}

typedef struct Async {
    int replies;
    bool closed;
} Async;

static void on_reply(PpQmp *q, json_object *ret, const GError *err,
                     gpointer opaque)
{
    Async *a = opaque;

    a->replies++;
    if (ret) {
        read_reply(ret);
    }
}

static void on_event(PpQmp *q, const char *name, json_object *data,
                     gint64 t, gpointer opaque)
{
    const char *st;

    /* the daemon compares names with strcmp: they must be strings */
    if (strcmp(name, "MIGRATION") == 0) {
        pp_json_get_str(data, "status", &st, NULL);
    }
}

static void on_closed(PpQmp *q, const GError *why, gpointer opaque)
{
    ((Async *)opaque)->closed = true;
}

static void async_mode(const uint8_t *data, size_t size)
{
    int peer = -1;
    int fd = feed(data, size, &peer);
    g_autoptr(GError) err = NULL;
    PpQmp *q;
    Async a = { 0 };
    GMainContext *ctx;

    if (fd < 0) {
        return;
    }
    if (!(q = pp_qmp_new_fd(fd, 1000, &err))) {
        close(peer);
        return;
    }
    ctx = g_main_context_new();
    pp_qmp_attach(q, ctx, on_event, on_closed, &a);
    pp_qmp_send(q, "query-migrate", NULL, 1000, on_reply, &a);
    pp_qmp_send(q, "query-status", NULL, 1000, on_reply, &a);
    /* EOF is already there: the connection closes within a few turns. */
    for (int i = 0; i < 1000 && !(a.closed && a.replies == 2); i++) {
        g_main_context_iteration(ctx, TRUE);
    }
    pp_qmp_free(q);
    while (g_main_context_iteration(ctx, FALSE)) {
    }
    g_main_context_unref(ctx);
    close(peer);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256 * 1024) {
        return 0;
    }
    sync_mode(data, size);
    async_mode(data, size);
    return 0;
}
