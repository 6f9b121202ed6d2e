/*
 * QMP client (see qmp.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "ppjson.h"
#include "qmp.h"
#include "pp-error.h"
#include "unixsock.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <glib-unix.h>

struct PpQmp {
    int fd;                 /* -1 once disconnected */
    json_tokener *tok;
    char buf[64 * 1024];    /* bytes received but not yet parsed */
    size_t buf_len;
    size_t buf_off;
    size_t msg_bytes;       /* bytes of the message being parsed */
    guint64 next_id;
    GQueue events;          /* json_object *, oldest first */
    char *version;
    bool greeted;           /* the first message (the banner) was read */
    guint stale_dropped;    /* replies/events before the banner, dropped */

    /* Asynchronous mode (attached to a main context). */
    GMainContext *ctx;
    GSource *watch;
    GHashTable *pending;    /* id (guint64 *) -> Pending * */
    PpQmpEventFunc on_event;
    PpQmpClosedFunc on_closed;
    gpointer opaque;
    bool closed_reported;
    int dispatching;        /* callbacks running: defer the free */
    bool free_requested;
    GSource *kick;          /* idle: deliver queued events and failures */
    GString *out;           /* requests not yet written (async mode) */
    GSource *out_watch;     /* G_IO_OUT while @out is not empty */
    GQueue failed;          /* Pending * that failed before being sent */
    struct Handshake *hs;   /* pp_qmp_connect_async() until ready */
};

/* An asynchronous connection until its capabilities are negotiated. */
typedef struct Handshake {
    PpQmpEventFunc on_event;
    PpQmpClosedFunc on_closed;
    PpQmpReadyFunc on_ready;
    gpointer opaque;
    GSource *timer;
    int timeout_ms;
    GString *held;          /* commands sent before it is ready: they go
                             * out after qmp_capabilities */
} Handshake;

typedef struct Pending {
    PpQmp *qmp;
    guint64 id;
    char *command;
    PpQmpReplyFunc cb;
    gpointer opaque;
    GSource *timeout;
} Pending;

static void qmp_really_free(PpQmp *qmp);
static void pending_free(gpointer p);

static void qmp_disconnect(PpQmp *qmp)
{
    if (qmp->out_watch) {
        g_source_destroy(qmp->out_watch);
        g_source_unref(qmp->out_watch);
        qmp->out_watch = NULL;
    }
    if (qmp->watch) {
        g_source_destroy(qmp->watch);
        g_source_unref(qmp->watch);
        qmp->watch = NULL;
    }
    if (qmp->fd >= 0) {
        close(qmp->fd);
        qmp->fd = -1;
    }
}

static bool check_connected(PpQmp *qmp, GError **errp)
{
    if (qmp->fd < 0) {
        g_set_error(errp, PP_ERROR, PP_ERROR_DISCONNECTED,
                    "QMP connection is closed");
        return false;
    }
    return true;
}

/*
 * Read one JSON message, waiting until @deadline (monotonic us; 0 = do not
 * wait for more bytes).  Returns NULL and sets *timed_out (error untouched)
 * when nothing complete arrived in time.
 */
/*
 * The members the client itself reads, checked once for every message so
 * that nothing later meets a null or a wrong type: the first message
 * (after stale ones, see stale_before_greeting()) must be the QMP banner;
 * then an event's name (a string), data (an object)
 * and timestamp (integers); a reply's id (an integer) and error (an
 * object with a string desc).  What "return" holds is the caller's to
 * check.
 */
static bool check_shape(PpQmp *qmp, json_object *msg, GError **errp)
{
    g_autoptr(GError) err = NULL;
    json_object *x;
    const char *s;
    gint64 i;

    if (!qmp->greeted) {
        if (!pp_json_get_obj(msg, "QMP", &x, NULL)) {
            g_set_error(errp, PP_ERROR, PP_ERROR_PROTOCOL,
                        "peer did not greet with a QMP banner");
            return false;
        }
        qmp->greeted = true;
        return true;
    }
    if (json_object_object_get_ex(msg, "event", NULL)) {
        if (!pp_json_get_str(msg, "event", &s, &err) ||
            !pp_json_opt_obj(msg, "data", &x, &err) ||
            !pp_json_opt_int(msg, "timestamp.seconds", &i, &err) ||
            !pp_json_opt_int(msg, "timestamp.microseconds", &i, &err)) {
            goto bad;
        }
        return true;
    }
    if (!pp_json_get_int(msg, "id", &i, &err) ||
        !pp_json_opt_obj(msg, "error", &x, &err) ||
        !pp_json_opt_str(msg, "error.desc", &s, &err)) {
        goto bad;
    }
    if (i < 0) {
        g_set_error(errp, PP_ERROR, PP_ERROR_PROTOCOL,
                    "QMP reply with a negative id");
        return false;
    }
    return true;
bad:
    g_set_error(errp, PP_ERROR, PP_ERROR_PROTOCOL, "malformed QMP message: %s",
                err->message);
    return false;
}

/*
 * QEMU's monitor thread takes a new client while its main thread may
 * still be running a command of the last one: that reply (or an event)
 * can reach the new client before the banner.  It belongs to the old
 * connection, and its id could match a command of this one: dropped.
 * Bounded, so a peer that never greets is still refused.
 */
#define PP_QMP_MAX_STALE 8

static bool stale_before_greeting(PpQmp *qmp, json_object *msg)
{
    if (qmp->greeted || json_object_object_get_ex(msg, "QMP", NULL) ||
        qmp->stale_dropped >= PP_QMP_MAX_STALE) {
        return false;
    }
    if (!json_object_object_get_ex(msg, "event", NULL) &&
        !json_object_object_get_ex(msg, "return", NULL) &&
        !json_object_object_get_ex(msg, "error", NULL)) {
        return false;
    }
    qmp->stale_dropped++;
    return true;
}

static json_object *read_message(PpQmp *qmp, gint64 deadline,
                                 bool *timed_out, GError **errp)
{
    *timed_out = false;
    for (;;) {
        /* Parse what we have. */
        while (qmp->buf_off < qmp->buf_len) {
            const char *p = qmp->buf + qmp->buf_off;
            size_t avail = qmp->buf_len - qmp->buf_off;
            /* Skip whitespace between messages. */
            if (qmp->msg_bytes == 0 && (*p == '\n' || *p == '\r' ||
                                        *p == ' ' || *p == '\t')) {
                qmp->buf_off++;
                continue;
            }
            json_object *obj = json_tokener_parse_ex(qmp->tok, p, (int)avail);
            enum json_tokener_error jerr = json_tokener_get_error(qmp->tok);
            size_t used = json_tokener_get_parse_end(qmp->tok);
            qmp->buf_off += used;
            qmp->msg_bytes += used;
            if (obj) {
                json_tokener_reset(qmp->tok);
                qmp->msg_bytes = 0;
                if (!json_object_is_type(obj, json_type_object)) {
                    json_object_put(obj);
                    g_set_error(errp, PP_ERROR, PP_ERROR_PROTOCOL,
                                "QMP peer sent a JSON value that is not an "
                                "object");
                    qmp_disconnect(qmp);
                    return NULL;
                }
                if (stale_before_greeting(qmp, obj)) {
                    json_object_put(obj);
                    continue;
                }
                if (!check_shape(qmp, obj, errp)) {
                    json_object_put(obj);
                    qmp_disconnect(qmp);
                    return NULL;
                }
                return obj;
            }
            if (jerr != json_tokener_continue) {
                g_set_error(errp, PP_ERROR, PP_ERROR_PROTOCOL,
                            "QMP peer sent malformed JSON: %s",
                            json_tokener_error_desc(jerr));
                qmp_disconnect(qmp);
                return NULL;
            }
            if (qmp->msg_bytes > PP_QMP_MAX_MESSAGE) {
                g_set_error(errp, PP_ERROR, PP_ERROR_PROTOCOL,
                            "QMP message exceeds %d bytes",
                            PP_QMP_MAX_MESSAGE);
                qmp_disconnect(qmp);
                return NULL;
            }
        }
        qmp->buf_off = qmp->buf_len = 0;

        /* Need more bytes. */
        gint64 now = g_get_monotonic_time();
        int wait_ms = deadline > now ? (int)((deadline - now + 999) / 1000) : 0;
        struct pollfd pfd = { .fd = qmp->fd, .events = POLLIN };
        int r = poll(&pfd, 1, wait_ms);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            g_set_error(errp, PP_ERROR, PP_ERROR_IO, "poll: %s",
                        g_strerror(errno));
            qmp_disconnect(qmp);
            return NULL;
        }
        if (r == 0) {
            *timed_out = true;
            return NULL;
        }
        ssize_t n = recv(qmp->fd, qmp->buf, sizeof(qmp->buf), 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            continue;
        }
        if (n <= 0) {
            g_set_error(errp, PP_ERROR, PP_ERROR_DISCONNECTED,
                        n == 0 && qmp->msg_bytes ?
                        "QMP connection closed in the middle of a message" :
                        n == 0 ? "QMP connection closed by QEMU" :
                        "QMP receive failed: %s", g_strerror(errno));
            qmp_disconnect(qmp);
            return NULL;
        }
        qmp->buf_len = (size_t)n;
    }
}

static bool send_all(PpQmp *qmp, const char *s, GError **errp)
{
    if (!pp_send_all(qmp->fd, s, strlen(s))) {
        g_set_error(errp, PP_ERROR, PP_ERROR_DISCONNECTED,
                    "QMP send failed: %s", g_strerror(errno));
        qmp_disconnect(qmp);
        return false;
    }
    return true;
}

static gint64 deadline_after(int timeout_ms)
{
    return g_get_monotonic_time() + (gint64)timeout_ms * 1000;
}

static PpQmp *qmp_alloc(int fd)
{
    PpQmp *qmp = g_new0(PpQmp, 1);

    qmp->fd = fd;
    qmp->tok = json_tokener_new_ex(64);
    json_tokener_set_flags(qmp->tok, JSON_TOKENER_STRICT |
                                     JSON_TOKENER_ALLOW_TRAILING_CHARS);
    qmp->next_id = 1;
    g_queue_init(&qmp->events);
    return qmp;
}

/* The greeting's QEMU version, for reports (qmp->version). */
static void take_version(PpQmp *qmp, json_object *greeting)
{
    json_object *q = NULL;
    gint64 a = -1, b = -1, c = -1;

    pp_json_get_obj(greeting, "QMP", &q, NULL); /* see check_shape() */
    /* for reports only: a greeting without a sane version is fine */
    if (pp_json_get_int(q, "version.qemu.major", &a, NULL) &&
        pp_json_get_int(q, "version.qemu.minor", &b, NULL) &&
        pp_json_get_int(q, "version.qemu.micro", &c, NULL)) {
        g_free(qmp->version);
        qmp->version = g_strdup_printf("%" G_GINT64_FORMAT ".%"
                                       G_GINT64_FORMAT ".%" G_GINT64_FORMAT,
                                       a, b, c);
    }
}

PpQmp *pp_qmp_new_fd(int fd, int timeout_ms, GError **errp)
{
    g_autoptr(PpQmp) qmp = qmp_alloc(fd);
    g_autoptr(json_object) greeting = NULL, caps = NULL;
    bool timed_out;

    greeting = read_message(qmp, deadline_after(timeout_ms), &timed_out, errp);
    if (!greeting) {
        if (timed_out) {
            g_set_error(errp, PP_ERROR, PP_ERROR_TIMEOUT,
                        "no QMP greeting within %d ms", timeout_ms);
        }
        return NULL;
    }
    take_version(qmp, greeting);
    caps = pp_qmp_execute(qmp, "qmp_capabilities", NULL, timeout_ms, errp);
    if (!caps) {
        return NULL;
    }
    return g_steal_pointer(&qmp);
}

PpQmp *pp_qmp_connect(const char *path, int timeout_ms, GError **errp)
{
    int fd = pp_unix_connect(path, "QMP socket", errp);

    return fd < 0 ? NULL : pp_qmp_new_fd(fd, timeout_ms, errp);
}

json_object *pp_qmp_execute(PpQmp *qmp, const char *command,
                            json_object *args, int timeout_ms, GError **errp)
{
    g_autoptr(json_object) req = json_object_new_object();
    guint64 id;
    gint64 deadline = deadline_after(timeout_ms);

    if (!check_connected(qmp, errp)) {
        json_object_put(args);
        return NULL;
    }
    id = qmp->next_id++;
    json_object_object_add(req, "execute", json_object_new_string(command));
    if (args) {
        json_object_object_add(req, "arguments", args);
    }
    json_object_object_add(req, "id", json_object_new_uint64(id));
    g_autofree char *line = g_strdup_printf(
        "%s\n", json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN));
    if (!send_all(qmp, line, errp)) {
        return NULL;
    }

    for (;;) {
        bool timed_out;
        g_autoptr(json_object) msg = read_message(qmp, deadline, &timed_out,
                                                  errp);
        json_object *jid, *ret, *err;

        if (!msg) {
            if (timed_out) {
                g_set_error(errp, PP_ERROR, PP_ERROR_TIMEOUT,
                            "QMP command '%s' got no reply within %d ms",
                            command, timeout_ms);
            }
            return NULL;
        }
        if (json_object_object_get_ex(msg, "event", NULL)) {
            g_queue_push_tail(&qmp->events, g_steal_pointer(&msg));
            continue;
        }
        if (!json_object_object_get_ex(msg, "id", &jid) ||
            !json_object_is_type(jid, json_type_int)) {
            g_set_error(errp, PP_ERROR, PP_ERROR_PROTOCOL,
                        "QMP reply without a numeric id");
            qmp_disconnect(qmp);
            return NULL;
        }
        guint64 rid = json_object_get_uint64(jid);
        if (rid < id) {
            continue; /* late reply to a command that timed out */
        }
        if (rid != id) {
            g_set_error(errp, PP_ERROR, PP_ERROR_PROTOCOL,
                        "QMP reply for unknown id %" G_GUINT64_FORMAT, rid);
            qmp_disconnect(qmp);
            return NULL;
        }
        if (json_object_object_get_ex(msg, "return", &ret)) {
            return json_object_get(ret);
        }
        if (json_object_object_get_ex(msg, "error", &err)) {
            const char *desc = "unknown error";
            pp_json_opt_str(err, "desc", &desc, NULL);
            g_set_error(errp, PP_ERROR, PP_ERROR_COMMAND, "%s: %s", command,
                        desc);
            return NULL;
        }
        g_set_error(errp, PP_ERROR, PP_ERROR_PROTOCOL,
                    "QMP reply to '%s' has neither return nor error", command);
        qmp_disconnect(qmp);
        return NULL;
    }
}

/* Messages were checked by check_shape(): an event's name is a string. */
static const char *event_name(json_object *ev)
{
    const char *n = "";

    pp_json_get_str(ev, "event", &n, NULL);
    return n;
}

json_object *pp_qmp_next_event(PpQmp *qmp, const char *name, int timeout_ms,
                               GError **errp)
{
    gint64 deadline = deadline_after(timeout_ms);

    for (GList *l = qmp->events.head; l; l = l->next) {
        if (!name || strcmp(event_name(l->data), name) == 0) {
            json_object *ev = l->data;
            g_queue_delete_link(&qmp->events, l);
            return ev;
        }
    }
    if (!check_connected(qmp, errp)) {
        return NULL;
    }
    for (;;) {
        bool timed_out;
        json_object *msg = read_message(qmp, timeout_ms > 0 ? deadline : 0,
                                        &timed_out, errp);
        if (!msg) {
            if (timed_out) {
                g_set_error(errp, PP_ERROR, PP_ERROR_TIMEOUT,
                            "no QMP event '%s' within %d ms",
                            name ? name : "(any)", timeout_ms);
            }
            return NULL;
        }
        if (!json_object_object_get_ex(msg, "event", NULL)) {
            json_object_put(msg); /* late reply to a timed-out command */
            continue;
        }
        if (!name || strcmp(event_name(msg), name) == 0) {
            return msg;
        }
        g_queue_push_tail(&qmp->events, msg);
    }
}

gint64 pp_qmp_event_time_us(json_object *event)
{
    gint64 sec, usec;

    if (!pp_json_get_int(event, "timestamp.seconds", &sec, NULL) ||
        !pp_json_get_int(event, "timestamp.microseconds", &usec, NULL) ||
        sec < 0 || sec > G_MAXINT64 / G_USEC_PER_SEC - 1 || usec < -1 ||
        usec >= G_USEC_PER_SEC) {
        return 0;
    }
    return sec * G_USEC_PER_SEC + usec;
}

const char *pp_qmp_version(PpQmp *qmp)
{
    return qmp->version ? qmp->version : "unknown";
}

bool pp_qmp_is_connected(PpQmp *qmp)
{
    return qmp->fd >= 0;
}

static void put_json(gpointer obj)
{
    json_object_put(obj);
}

static void pending_free(gpointer p)
{
    Pending *pd = p;

    if (pd->timeout) {
        g_source_destroy(pd->timeout);
        g_source_unref(pd->timeout);
    }
    g_free(pd->command);
    g_free(pd);
}

void pp_qmp_free(PpQmp *qmp)
{
    if (!qmp) {
        return;
    }
    if (qmp->dispatching) {
        qmp->free_requested = true;
        qmp_disconnect(qmp);
        return;
    }
    qmp_really_free(qmp);
}

static void qmp_really_free(PpQmp *qmp)
{
    qmp_disconnect(qmp);
    if (qmp->kick) {
        g_source_destroy(qmp->kick);
        g_source_unref(qmp->kick);
    }
    g_queue_clear_full(&qmp->failed, pending_free);
    if (qmp->out) {
        g_string_free(qmp->out, TRUE);
    }
    if (qmp->pending) {
        /* Freed without a close report: drop callbacks silently. */
        g_hash_table_unref(qmp->pending);
    }
    if (qmp->hs) {
        /* freed by its owner during the handshake: no report */
        if (qmp->hs->timer) {
            g_source_destroy(qmp->hs->timer);
            g_source_unref(qmp->hs->timer);
        }
        g_string_free(qmp->hs->held, TRUE);
        g_free(qmp->hs);
    }
    if (qmp->ctx) {
        g_main_context_unref(qmp->ctx);
    }
    if (qmp->tok) {
        json_tokener_free(qmp->tok);
    }
    g_queue_clear_full(&qmp->events, put_json);
    g_free(qmp->version);
    g_free(qmp);
}

/* ------------------------------------------------------------------ */
/* Asynchronous mode                                                   */

/* Run a callback section; returns false when the PpQmp was freed in it. */
static void dispatch_enter(PpQmp *qmp)
{
    qmp->dispatching++;
}

static bool dispatch_leave(PpQmp *qmp)
{
    if (--qmp->dispatching == 0 && qmp->free_requested) {
        qmp_really_free(qmp);
        return false;
    }
    return !qmp->free_requested;
}

static void complete(PpQmp *qmp, Pending *pd, json_object *ret,
                     const GError *err)
{
    /* Steal from the table first: the callback may send or free. */
    g_hash_table_steal(qmp->pending, &pd->id);
    if (pd->cb) {
        pd->cb(qmp, ret, err, pd->opaque);
    }
    pending_free(pd);
}

/* Fail every pending command and report the close, once. */
static void async_closed(PpQmp *qmp, const GError *why)
{
    GHashTableIter it;
    gpointer key, value;
    g_autoptr(GError) disc = NULL;

    qmp_disconnect(qmp);
    if (qmp->closed_reported) {
        return;
    }
    qmp->closed_reported = true;
    disc = g_error_new(PP_ERROR, PP_ERROR_DISCONNECTED, "%s",
                       why ? why->message : "QMP connection closed");
    dispatch_enter(qmp);
    for (;;) {
        g_hash_table_iter_init(&it, qmp->pending);
        if (!g_hash_table_iter_next(&it, &key, &value)) {
            break;
        }
        complete(qmp, value, NULL, disc);
        if (qmp->free_requested) {
            break;
        }
    }
    if (!qmp->free_requested && qmp->on_closed) {
        qmp->on_closed(qmp, disc, qmp->opaque);
    }
    dispatch_leave(qmp);
}

static void deliver_event(PpQmp *qmp, json_object *ev)
{
    json_object *data = NULL;

    if (!qmp->on_event) {
        return;
    }
    pp_json_opt_obj(ev, "data", &data, NULL);
    qmp->on_event(qmp, event_name(ev), data, pp_qmp_event_time_us(ev),
                  qmp->opaque);
}

/* Handle one message in async mode; false when the connection died. */
static void hs_on_caps(PpQmp *qmp, json_object *ret, const GError *err,
                       gpointer opaque);

static bool async_message(PpQmp *qmp, json_object *msg)
{
    json_object *jid, *ret, *err;
    guint64 id;
    Pending *pd;

    if (qmp->hs && json_object_object_get_ex(msg, "QMP", NULL)) {
        /* the banner (check_shape() let only it through first) */
        take_version(qmp, msg);
        pp_qmp_send(qmp, "qmp_capabilities", NULL, qmp->hs->timeout_ms,
                    hs_on_caps, qmp->hs);
        return true;
    }

    if (json_object_object_get_ex(msg, "event", NULL)) {
        deliver_event(qmp, msg);
        return true;
    }
    if (!json_object_object_get_ex(msg, "id", &jid) ||
        !json_object_is_type(jid, json_type_int)) {
        g_autoptr(GError) e = g_error_new(PP_ERROR, PP_ERROR_PROTOCOL,
                                          "QMP reply without a numeric id");
        async_closed(qmp, e);
        return false;
    }
    id = json_object_get_uint64(jid);
    pd = g_hash_table_lookup(qmp->pending, &id);
    if (!pd) {
        if (id < qmp->next_id) {
            return true; /* late reply to a command that timed out */
        }
        g_autoptr(GError) e = g_error_new(
            PP_ERROR, PP_ERROR_PROTOCOL,
            "QMP reply for unknown id %" G_GUINT64_FORMAT, id);
        async_closed(qmp, e);
        return false;
    }
    if (json_object_object_get_ex(msg, "return", &ret)) {
        complete(qmp, pd, ret, NULL);
    } else if (json_object_object_get_ex(msg, "error", &err)) {
        const char *desc = "unknown error";
        pp_json_opt_str(err, "desc", &desc, NULL);
        g_autoptr(GError) e = g_error_new(
            PP_ERROR, PP_ERROR_COMMAND, "%s: %s", pd->command, desc);
        complete(qmp, pd, NULL, e);
    } else {
        g_autoptr(GError) e = g_error_new(
            PP_ERROR, PP_ERROR_PROTOCOL,
            "QMP reply to '%s' has neither return nor error", pd->command);
        async_closed(qmp, e);
        return false;
    }
    return true;
}

static gboolean on_readable(gint fd, GIOCondition cond, gpointer opaque)
{
    PpQmp *qmp = opaque;
    bool alive = true;

    dispatch_enter(qmp);
    while (alive && qmp->fd >= 0 && !qmp->free_requested) {
        bool timed_out;
        g_autoptr(GError) err = NULL;
        g_autoptr(json_object) msg = read_message(qmp, 0, &timed_out, &err);
        if (!msg) {
            if (!timed_out) {
                async_closed(qmp, err);
            }
            break;
        }
        alive = async_message(qmp, msg);
    }
    dispatch_leave(qmp);
    return G_SOURCE_CONTINUE; /* a disconnect destroys the source */
}

static gboolean deliver_queued(gpointer opaque)
{
    PpQmp *qmp = opaque;
    json_object *ev;
    Pending *pd;

    g_source_unref(qmp->kick);
    qmp->kick = NULL;
    dispatch_enter(qmp);
    while (!qmp->free_requested && (ev = g_queue_pop_head(&qmp->events))) {
        deliver_event(qmp, ev);
        json_object_put(ev);
    }
    while (!qmp->free_requested && (pd = g_queue_pop_head(&qmp->failed))) {
        g_autoptr(GError) e = g_error_new(PP_ERROR, PP_ERROR_DISCONNECTED,
                                          "QMP connection is closed");
        if (pd->cb) {
            pd->cb(qmp, NULL, e, pd->opaque);
        }
        pending_free(pd);
    }
    if (!qmp->free_requested && qmp->fd < 0) {
        async_closed(qmp, NULL);
    }
    dispatch_leave(qmp);
    return G_SOURCE_REMOVE;
}

/* Schedule deliver_queued() on the loop (at most one pending at a time). */
static void kick(PpQmp *qmp)
{
    if (qmp->kick) {
        return;
    }
    qmp->kick = g_idle_source_new();
    g_source_set_callback(qmp->kick, deliver_queued, qmp, NULL);
    g_source_attach(qmp->kick, qmp->ctx);
}

/* Write what we can of @qmp->out without blocking; false on a dead peer. */
static bool flush_out(PpQmp *qmp)
{
    while (qmp->out->len > 0) {
        ssize_t n = send(qmp->fd, qmp->out->str, qmp->out->len,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            return true;
        }
        if (n <= 0) {
            return false;
        }
        g_string_erase(qmp->out, 0, n);
    }
    return true;
}

static gboolean on_writable(gint fd, GIOCondition cond, gpointer opaque)
{
    PpQmp *qmp = opaque;

    if (!flush_out(qmp)) {
        qmp_disconnect(qmp);  /* destroys this source */
        kick(qmp);            /* report the close from the loop */
        return G_SOURCE_REMOVE;
    }
    if (qmp->out->len == 0) {
        g_source_unref(qmp->out_watch);
        qmp->out_watch = NULL;
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

/*
 * Queue @line for QEMU.  Never blocks the loop: a monitor that stops
 * reading (say, QEMU's main thread stuck on a post-copy fault) only grows
 * the buffer, and commands time out as usual.
 */
static bool queue_out(PpQmp *qmp, const char *line)
{
    g_string_append(qmp->out, line);
    if (qmp->out_watch) {
        return true;
    }
    if (!flush_out(qmp)) {
        return false;
    }
    if (qmp->out->len > 0) {
        qmp->out_watch = g_unix_fd_source_new(qmp->fd, G_IO_OUT);
        g_source_set_callback(qmp->out_watch, G_SOURCE_FUNC(on_writable), qmp,
                              NULL);
        g_source_attach(qmp->out_watch, qmp->ctx);
    }
    return true;
}

void pp_qmp_attach(PpQmp *qmp, GMainContext *ctx, PpQmpEventFunc on_event,
                   PpQmpClosedFunc on_closed, gpointer opaque)
{
    g_return_if_fail(!qmp->ctx);
    qmp->ctx = ctx ? g_main_context_ref(ctx) : g_main_context_ref_thread_default();
    qmp->on_event = on_event;
    qmp->on_closed = on_closed;
    qmp->opaque = opaque;
    qmp->pending = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL,
                                         pending_free);
    qmp->out = g_string_new(NULL);
    if (qmp->fd >= 0) {
        qmp->watch = g_unix_fd_source_new(qmp->fd, G_IO_IN | G_IO_HUP |
                                          G_IO_ERR);
        g_source_set_callback(qmp->watch, G_SOURCE_FUNC(on_readable), qmp,
                              NULL);
        g_source_attach(qmp->watch, qmp->ctx);
    }
    /* Queued events (and a connection that is already dead) are reported
     * from the loop, never from inside this call. */
    kick(qmp);
}

/* ---- pp_qmp_connect_async() ---- */

static bool queue_out(PpQmp *qmp, const char *line);
static void kick(PpQmp *qmp);

static void hs_finish(PpQmp *qmp, const GError *err)
{
    Handshake *hs = qmp->hs;

    qmp->hs = NULL;
    if (hs->timer) {
        g_source_destroy(hs->timer);
        g_source_unref(hs->timer);
    }
    if (err) {
        /* The caller frees it (it may be inside this callback); commands
         * it sent meanwhile fail from the loop unless it does. */
        qmp_disconnect(qmp);
        qmp->on_event = NULL;
        qmp->on_closed = NULL;
        kick(qmp);
        hs->on_ready(qmp, err, hs->opaque);
    } else {
        qmp->on_event = hs->on_event;
        qmp->on_closed = hs->on_closed;
        qmp->opaque = hs->opaque;
        if (hs->held->len && !queue_out(qmp, hs->held->str)) {
            qmp_disconnect(qmp);
            kick(qmp);
        }
        hs->on_ready(qmp, NULL, hs->opaque);
    }
    g_string_free(hs->held, TRUE);
    g_free(hs);
}

static void hs_on_caps(PpQmp *qmp, json_object *ret, const GError *err,
                       gpointer opaque)
{
    if (qmp->hs) {
        hs_finish(qmp, err);
    }
}

static void hs_on_closed(PpQmp *qmp, const GError *why, gpointer opaque)
{
    if (qmp->hs) {
        g_autoptr(GError) e = g_error_new(
            PP_ERROR, why ? why->code : PP_ERROR_DISCONNECTED,
            "QMP handshake: %s", why ? why->message : "connection closed");
        hs_finish(qmp, e);
    }
}

static void hs_on_event(PpQmp *qmp, const char *name, json_object *data,
                        gint64 time_us, gpointer opaque)
{
    /* QEMU holds events until capabilities are negotiated */
}

static gboolean hs_on_timer(gpointer opaque)
{
    PpQmp *qmp = opaque;
    g_autoptr(GError) e = g_error_new(PP_ERROR, PP_ERROR_TIMEOUT,
                                      "QMP handshake (greeting and "
                                      "capabilities) not done within %d ms",
                                      qmp->hs->timeout_ms);

    dispatch_enter(qmp);
    hs_finish(qmp, e);
    dispatch_leave(qmp);
    return G_SOURCE_REMOVE;
}

PpQmp *pp_qmp_connect_async(const char *path, GMainContext *ctx,
                            int timeout_ms, PpQmpEventFunc on_event,
                            PpQmpClosedFunc on_closed, PpQmpReadyFunc on_ready,
                            gpointer opaque, GError **errp)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "QMP socket path '%s' is too long", path);
        return NULL;
    }
    strcpy(sa.sun_path, path);
    /* Non-blocking: a QEMU that does not accept (its backlog full) makes
     * connect() fail with EAGAIN rather than wait. */
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;

        if (fd >= 0) {
            close(fd);
        }
        g_set_error(errp, PP_ERROR, PP_ERROR_IO,
                    "cannot connect to QMP socket '%s': %s", path,
                    e == EAGAIN ? "QEMU does not accept connections" :
                    g_strerror(e));
        return NULL;
    }
    return pp_qmp_new_fd_async(fd, ctx, timeout_ms, on_event, on_closed,
                               on_ready, opaque);
}

PpQmp *pp_qmp_new_fd_async(int fd, GMainContext *ctx, int timeout_ms,
                           PpQmpEventFunc on_event, PpQmpClosedFunc on_closed,
                           PpQmpReadyFunc on_ready, gpointer opaque)
{
    Handshake *hs = g_new0(Handshake, 1);
    PpQmp *qmp;

    hs->held = g_string_new(NULL);
    hs->on_event = on_event;
    hs->on_closed = on_closed;
    hs->on_ready = on_ready;
    hs->opaque = opaque;
    hs->timeout_ms = timeout_ms;
    qmp = qmp_alloc(fd);
    qmp->hs = hs;
    pp_qmp_attach(qmp, ctx, hs_on_event, hs_on_closed, NULL);
    hs->timer = g_timeout_source_new((guint)timeout_ms);
    g_source_set_callback(hs->timer, hs_on_timer, qmp, NULL);
    g_source_attach(hs->timer, qmp->ctx);
    return qmp;
}

static gboolean on_timeout(gpointer opaque)
{
    Pending *pd = opaque;
    PpQmp *qmp = pd->qmp;
    g_autoptr(GError) e = g_error_new(PP_ERROR, PP_ERROR_TIMEOUT,
                                      "QMP command '%s' got no reply in time",
                                      pd->command);

    g_source_unref(pd->timeout);
    pd->timeout = NULL;
    dispatch_enter(qmp);
    complete(qmp, pd, NULL, e);
    dispatch_leave(qmp);
    return G_SOURCE_REMOVE;
}

void pp_qmp_send(PpQmp *qmp, const char *command, json_object *args,
                 int timeout_ms, PpQmpReplyFunc cb, gpointer opaque)
{
    g_autoptr(json_object) req = json_object_new_object();
    Pending *pd = g_new0(Pending, 1);

    g_return_if_fail(qmp->ctx);
    pd->qmp = qmp;
    pd->command = g_strdup(command);
    pd->cb = cb;
    pd->opaque = opaque;
    if (qmp->fd < 0) {
        json_object_put(args);
        g_queue_push_tail(&qmp->failed, pd);
        kick(qmp);
        return;
    }
    pd->id = qmp->next_id++;
    json_object_object_add(req, "execute", json_object_new_string(command));
    if (args) {
        json_object_object_add(req, "arguments", args);
    }
    json_object_object_add(req, "id", json_object_new_uint64(pd->id));
    pd->timeout = g_timeout_source_new((guint)timeout_ms);
    g_source_set_callback(pd->timeout, on_timeout, pd, NULL);
    g_source_attach(pd->timeout, qmp->ctx);
    g_hash_table_insert(qmp->pending, &pd->id, pd);

    g_autofree char *line = g_strdup_printf(
        "%s\n", json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN));
    if (qmp->hs && strcmp(command, "qmp_capabilities") != 0) {
        /* not negotiated yet: it goes out once the handshake is done */
        g_string_append(qmp->hs->held, line);
        return;
    }
    /* A failure closes the connection; the pending command then fails
     * from the loop like every other. */
    if (!queue_out(qmp, line)) {
        qmp_disconnect(qmp);
        kick(qmp);
    }
}
