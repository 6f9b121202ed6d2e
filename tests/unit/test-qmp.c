/*
 * Unit tests: QMP client against a fake server replaying transcripts from
 * tests/data/qmp (see basic.txt for the format), plus generated abuse: a
 * message larger than the client's bound.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pp-error.h"
#include "qmp.h"

#ifndef TEST_DATA
#define TEST_DATA "tests/data"
#endif

typedef struct FakeServer {
    int fd;
    char *script;           /* transcript text, or NULL */
    GString *raw;           /* or: bytes to send after the greeting dance */
    GThread *thread;
    char *failure;          /* set when the client deviated from the script */
    GMutex lock;            /* STALL: wait for fake_release() */
    GCond cond;
    bool released;
    bool stall_expired;     /* STALL gave up waiting (its cap passed) */
} FakeServer;

/* End a STALL early (the test saw what it wanted while the peer hung). */
static void fake_release(FakeServer *fs)
{
    g_mutex_lock(&fs->lock);
    fs->released = true;
    g_cond_signal(&fs->cond);
    g_mutex_unlock(&fs->lock);
}

static bool send_chunked(int fd, const char *s, size_t len, size_t chunk)
{
    while (len > 0) {
        size_t n = chunk && chunk < len ? chunk : len;
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0) {
            return false;
        }
        s += w;
        len -= (size_t)w;
        if (chunk) {
            g_usleep(200);
        }
    }
    return true;
}

/* Read one request line from the client; NULL on EOF. */
static char *read_line(int fd)
{
    GString *s = g_string_new(NULL);
    char c;

    for (;;) {
        ssize_t n = recv(fd, &c, 1, 0);
        if (n <= 0) {
            g_string_free(s, TRUE);
            return NULL;
        }
        if (c == '\n') {
            return g_string_free(s, FALSE);
        }
        g_string_append_c(s, c);
    }
}

static gpointer server_main(gpointer opaque)
{
    FakeServer *fs = opaque;
    g_auto(GStrv) lines = g_strsplit(fs->script, "\n", -1);
    gint64 id = -1, prev_id = -1;
    size_t chunk = 0;

    for (char **l = lines; *l; l++) {
        char *line = *l;
        if (g_str_has_prefix(line, "S ") || g_str_has_prefix(line, "RAW ")) {
            bool raw = line[0] == 'R';
            g_autofree char *id_s = g_strdup_printf("%" G_GINT64_FORMAT, id);
            g_autofree char *prev_s = g_strdup_printf("%" G_GINT64_FORMAT,
                                                      prev_id);
            g_autoptr(GString) msg = g_string_new(line + (raw ? 4 : 2));
            g_string_replace(msg, "@PREVID", prev_s, 0);
            g_string_replace(msg, "@ID", id_s, 0);
            if (!raw) {
                g_string_append_c(msg, '\n');
            }
            if (!send_chunked(fs->fd, msg->str, msg->len, chunk)) {
                break;
            }
        } else if (g_str_has_prefix(line, "C ")) {
            g_autofree char *req = read_line(fs->fd);
            g_autoptr(json_object) o = req ? json_tokener_parse(req) : NULL;
            json_object *ex, *jid;
            if (!o || !json_object_object_get_ex(o, "execute", &ex) ||
                strcmp(json_object_get_string(ex), line + 2) != 0 ||
                !json_object_object_get_ex(o, "id", &jid)) {
                fs->failure = g_strdup_printf("expected '%s', got '%s'",
                                              line + 2, req ? req : "EOF");
                break;
            }
            prev_id = id;
            id = json_object_get_int64(jid);
        } else if (g_str_has_prefix(line, "STALL ")) {
            /* Read nothing until released, or until the cap passes. */
            gint64 end = g_get_monotonic_time() +
                         (gint64)atoi(line + 6) * 1000;
            g_mutex_lock(&fs->lock);
            while (!fs->released) {
                if (!g_cond_wait_until(&fs->cond, &fs->lock, end)) {
                    fs->stall_expired = true;
                    break;
                }
            }
            g_mutex_unlock(&fs->lock);
        } else if (g_str_has_prefix(line, "SPLIT ")) {
            chunk = (size_t)atoi(line + 6);
        } else if (strcmp(line, "CLOSE") == 0) {
            break;
        }
    }
    if (fs->raw) {
        send_chunked(fs->fd, fs->raw->str, fs->raw->len, 0);
    }
    shutdown(fs->fd, SHUT_RDWR);
    return NULL;
}

/* Start a fake server for @transcript; returns the client's end. */
static int fake_start(FakeServer *fs, const char *transcript, GString *raw)
{
    int sv[2];
    g_autofree char *path = g_build_filename(TEST_DATA, "qmp", transcript,
                                             NULL);

    memset(fs, 0, sizeof(*fs));
    g_mutex_init(&fs->lock);
    g_cond_init(&fs->cond);
    if (!g_file_get_contents(path, &fs->script, NULL, NULL)) {
        fail_msg("cannot read transcript %s", path);
    }
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                     0);
    fs->fd = sv[1];
    fs->raw = raw;
    fs->thread = g_thread_new("fake-qmp", server_main, fs);
    return sv[0];
}

static void fake_finish(FakeServer *fs)
{
    g_thread_join(fs->thread);
    close(fs->fd);
    g_mutex_clear(&fs->lock);
    g_cond_clear(&fs->cond);
    if (fs->failure) {
        fail_msg("fake server: %s", fs->failure);
    }
    g_free(fs->script);
    if (fs->raw) {
        g_string_free(fs->raw, TRUE);
    }
}

static void run_basic(const char *transcript)
{
    FakeServer fs;
    g_autoptr(GError) err = NULL;
    int fd = fake_start(&fs, transcript, NULL);
    g_autoptr(PpQmp) q = pp_qmp_new_fd(fd, 2000, &err);

    assert_non_null(q);
    assert_null(err);
    /* An event arrives before the reply: queued, reply still matched. */
    g_autoptr(json_object) st = pp_qmp_execute(q, "query-status", NULL, 2000,
                                               &err);
    if (!st) {
        fail_msg("query-status: %s", err->message);
    }
    json_object *s;
    assert_true(json_object_object_get_ex(st, "status", &s));
    assert_string_equal(json_object_get_string(s), "running");

    g_autoptr(json_object) ev = pp_qmp_next_event(q, "STOP", 0, &err);
    assert_non_null(ev);
    assert_int_equal(pp_qmp_event_time_us(ev), 1700000000LL * 1000000 + 250);

    /* QEMU's error reply becomes PP_ERROR_COMMAND with its description. */
    json_object *args = json_object_new_object();
    json_object_object_add(args, "uri", json_object_new_string("unix:/x"));
    g_autoptr(json_object) r = pp_qmp_execute(q, "migrate", args, 2000, &err);
    assert_null(r);
    assert_true(g_error_matches(err, PP_ERROR, PP_ERROR_COMMAND));
    assert_non_null(strstr(err->message, "migration process in progress"));
    assert_true(pp_qmp_is_connected(q));
    g_clear_error(&err);

    /* No more events: a zero-timeout wait says so without blocking long. */
    g_autoptr(json_object) none = pp_qmp_next_event(q, NULL, 0, &err);
    assert_null(none);
    assert_non_null(err);
    fake_finish(&fs);
}

static void test_basic(void **state)
{
    run_basic("basic.txt");
}

static void test_split_reads(void **state)
{
    run_basic("split.txt");
}

/* Connect through the fake server and run one query-status expecting an
 * error of @code; then the connection must be dead. */
static void expect_failure(const char *transcript, GString *raw, int code,
                           const char *needle)
{
    FakeServer fs;
    g_autoptr(GError) err = NULL;
    int fd = fake_start(&fs, transcript, raw);
    g_autoptr(PpQmp) q = pp_qmp_new_fd(fd, 2000, &err);

    assert_non_null(q);
    g_autoptr(json_object) r = pp_qmp_execute(q, "query-status", NULL, 5000,
                                              &err);
    assert_null(r);
    assert_non_null(err);
    if (!g_error_matches(err, PP_ERROR, code)) {
        fail_msg("expected error code %d, got %d: %s", code, err->code,
                 err->message);
    }
    if (needle && !strstr(err->message, needle)) {
        fail_msg("error '%s' lacks '%s'", err->message, needle);
    }
    assert_false(pp_qmp_is_connected(q));
    g_clear_error(&err);
    g_autoptr(json_object) again = pp_qmp_execute(q, "query-status", NULL,
                                                  100, &err);
    assert_null(again);
    assert_true(g_error_matches(err, PP_ERROR, PP_ERROR_DISCONNECTED));
    fake_finish(&fs);
}

static void test_garbage(void **state)
{
    expect_failure("garbage.txt", NULL, PP_ERROR_PROTOCOL, "malformed JSON");
}

static void test_eof_mid_reply(void **state)
{
    expect_failure("eof-mid-reply.txt", NULL, PP_ERROR_DISCONNECTED,
                   "middle of a message");
}

static void test_unknown_id(void **state)
{
    expect_failure("unknown-id.txt", NULL, PP_ERROR_PROTOCOL, "unknown id");
}

static void test_non_object(void **state)
{
    expect_failure("non-object.txt", NULL, PP_ERROR_PROTOCOL, "not an object");
}

/* Nulls and wrong types where the client reads a member: a protocol
 * error that kills the connection, never a crash or a coerced value. */
static void test_null_and_wrong_types(void **state)
{
    expect_failure("null-event.txt", NULL, PP_ERROR_PROTOCOL,
                   "'event' is null, expected a string");
    expect_failure("event-data-string.txt", NULL, PP_ERROR_PROTOCOL,
                   "'data' is a string, expected an object");
    expect_failure("string-id.txt", NULL, PP_ERROR_PROTOCOL,
                   "'id' is a string, expected an integer");
    expect_failure("error-null-desc.txt", NULL, PP_ERROR_PROTOCOL,
                   "'error.desc' is null");
    expect_failure("error-not-object.txt", NULL, PP_ERROR_PROTOCOL,
                   "'error' is a string, expected an object");
}

static void test_huge_message(void **state)
{
    /* A syntactically fine reply that never ends within the bound. */
    GString *raw = g_string_new("{\"return\": \"");
    while (raw->len < PP_QMP_MAX_MESSAGE + 65536) {
        g_string_append(raw, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    }
    g_string_append(raw, "\"}\n");
    expect_failure("caps-only.txt", raw, PP_ERROR_PROTOCOL, "exceeds");
}

static void test_not_qmp(void **state)
{
    FakeServer fs;
    g_autoptr(GError) err = NULL;
    int fd = fake_start(&fs, "not-qmp.txt", NULL);
    g_autoptr(PpQmp) q = pp_qmp_new_fd(fd, 2000, &err);

    assert_null(q);
    assert_true(g_error_matches(err, PP_ERROR, PP_ERROR_PROTOCOL));
    assert_non_null(strstr(err->message, "QMP banner"));
    fake_finish(&fs);
}

/* Replies and events a monitor sends before its banner belong to the
 * connection before this one (QEMU's main thread can answer an old
 * command just as its monitor thread accepts the next client): dropped,
 * and the handshake goes on.  Anything else first is still refused
 * (test_not_qmp). */
static void test_stale_before_greeting(void **state)
{
    FakeServer fs;
    g_autoptr(GError) err = NULL;
    int fd = fake_start(&fs, "stale-before-greeting.txt", NULL);
    g_autoptr(PpQmp) q = pp_qmp_new_fd(fd, 2000, &err);
    json_object *s;

    if (!q) {
        fail_msg("connect: %s", err->message);
    }
    g_autoptr(json_object) st = pp_qmp_execute(q, "query-status", NULL, 2000,
                                               &err);
    if (!st) {
        fail_msg("query-status: %s", err->message);
    }
    assert_true(json_object_object_get_ex(st, "status", &s));
    assert_string_equal(json_object_get_string(s), "running");
    /* the stale event is not handed to the caller either */
    g_autoptr(json_object) none = pp_qmp_next_event(q, NULL, 0, &err);
    assert_null(none);
    fake_finish(&fs);
}

static void test_late_reply_dropped(void **state)
{
    FakeServer fs;
    g_autoptr(GError) err = NULL;
    int fd = fake_start(&fs, "late-reply.txt", NULL);
    g_autoptr(PpQmp) q = pp_qmp_new_fd(fd, 2000, &err);
    json_object *s;

    assert_non_null(q);
    g_autoptr(json_object) r1 = pp_qmp_execute(q, "query-status", NULL, 100,
                                               &err);
    assert_null(r1);
    assert_true(g_error_matches(err, PP_ERROR, PP_ERROR_TIMEOUT));
    g_clear_error(&err);
    g_autoptr(json_object) r2 = pp_qmp_execute(q, "query-migrate", NULL, 2000,
                                               &err);
    if (!r2) { fail_msg("r2: %s", err->message); }
    assert_true(json_object_object_get_ex(r2, "status", &s));
    assert_string_equal(json_object_get_string(s), "completed");
    fake_finish(&fs);
}

static void test_connect_errors(void **state)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(PpQmp) q = pp_qmp_connect("/nonexistent/qmp.sock", 100, &err);
    g_autofree char *longpath = g_strnfill(200, 'x');

    assert_null(q);
    assert_true(g_error_matches(err, PP_ERROR, PP_ERROR_IO));
    assert_non_null(strstr(err->message, "/nonexistent/qmp.sock"));
    g_clear_error(&err);
    q = pp_qmp_connect(longpath, 100, &err);
    assert_null(q);
    assert_true(g_error_matches(err, PP_ERROR, PP_ERROR_INVALID));
}

static void test_greeting_timeout(void **state)
{
    int sv[2];
    g_autoptr(GError) err = NULL;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                     0);
    g_autoptr(PpQmp) q = pp_qmp_new_fd(sv[0], 100, &err);
    assert_null(q);
    assert_true(g_error_matches(err, PP_ERROR, PP_ERROR_TIMEOUT));
    close(sv[1]);
}

/* ---- asynchronous mode ---- */

typedef struct AsyncCtx {
    GMainLoop *loop;
    GPtrArray *log;     /* what happened, in order */
    int closed;
    bool free_in_cb;
} AsyncCtx;

static void a_event(PpQmp *q, const char *name, json_object *data,
                    gint64 t, gpointer opaque)
{
    AsyncCtx *c = opaque;
    g_ptr_array_add(c->log, g_strdup_printf("event %s", name));
}

static void a_closed(PpQmp *q, const GError *why, gpointer opaque)
{
    AsyncCtx *c = opaque;
    c->closed++;
    g_ptr_array_add(c->log, g_strdup("closed"));
    g_main_loop_quit(c->loop);
}

static void a_reply(PpQmp *q, json_object *ret, const GError *err,
                    gpointer opaque)
{
    AsyncCtx *c = opaque;
    if (err) {
        g_ptr_array_add(c->log, g_strdup_printf("error %d %s", err->code,
                                                err->message));
    } else {
        json_object *s = NULL;
        json_object_object_get_ex(ret, "status", &s);
        g_ptr_array_add(c->log, g_strdup_printf(
            "reply %s", s ? json_object_get_string(s) : "{}"));
    }
    if (c->free_in_cb) {
        pp_qmp_free(q);
        g_main_loop_quit(c->loop);
    }
}

static void assert_log(AsyncCtx *c, const char *const *want)
{
    guint n = g_strv_length((char **)want);
    for (guint i = 0; i < MAX(n, c->log->len); i++) {
        const char *got = i < c->log->len ? c->log->pdata[i] : "(nothing)";
        const char *exp = i < n ? want[i] : "(nothing)";
        if (!g_str_has_prefix(got, exp)) {
            fail_msg("log[%u]: got '%s', want '%s'", i, got, exp);
        }
    }
}

static void test_async_basic(void **state)
{
    FakeServer fs;
    g_autoptr(GError) err = NULL;
    int fd = fake_start(&fs, "basic.txt", NULL);
    PpQmp *q = pp_qmp_new_fd(fd, 2000, &err);
    AsyncCtx c = { .loop = g_main_loop_new(NULL, FALSE),
                   .log = g_ptr_array_new_with_free_func(g_free) };
    json_object *args = json_object_new_object();

    assert_non_null(q);
    pp_qmp_attach(q, NULL, a_event, a_closed, &c);
    pp_qmp_send(q, "query-status", NULL, 2000, a_reply, &c);
    json_object_object_add(args, "uri", json_object_new_string("unix:/x"));
    pp_qmp_send(q, "migrate", args, 2000, a_reply, &c);
    g_main_loop_run(c.loop);
    const char *want[] = { "event STOP", "reply running",
                           "error 6 migrate: There's a migration", "closed",
                           NULL };
    assert_int_equal(PP_ERROR_COMMAND, 6);
    assert_log(&c, want);
    assert_int_equal(c.closed, 1);
    /* After the close, a send fails from the loop, not inline. */
    pp_qmp_send(q, "query-status", NULL, 2000, a_reply, &c);
    assert_int_equal(c.log->len, 4);
    while (g_main_context_iteration(NULL, FALSE)) {
    }
    assert_int_equal(c.log->len, 5);
    assert_true(g_str_has_prefix(c.log->pdata[4], "error 5"));
    pp_qmp_free(q);
    fake_finish(&fs);
    g_main_loop_unref(c.loop);
    g_ptr_array_unref(c.log);
}

/* ---- pp_qmp_new_fd_async(): the handshake without blocking ---- */

typedef struct ReadyCtx {
    AsyncCtx a;
    PpQmp *qmp;
    GError *err;
    int calls;
} ReadyCtx;

static void on_ready(PpQmp *q, const GError *err, gpointer opaque)
{
    ReadyCtx *r = opaque;

    r->calls++;
    r->qmp = q;
    if (err) {
        r->err = g_error_copy(err);
        pp_qmp_free(q);         /* ours, even when it failed */
        r->qmp = NULL;
    }
    g_main_loop_quit(r->a.loop);
}

static void test_async_handshake(void **state)
{
    FakeServer fs;
    ReadyCtx r = { .a = { .loop = g_main_loop_new(NULL, FALSE),
                          .log = g_ptr_array_new_with_free_func(g_free) } };
    int fd = fake_start(&fs, "basic.txt", NULL);

    PpQmp *q = pp_qmp_new_fd_async(fd, NULL, 2000, a_event, a_closed,
                                   on_ready, &r.a);
    /* nothing inline: the handshake runs on the loop */
    assert_non_null(q);
    assert_int_equal(r.calls, 0);
    /* sent before it is ready: held until after qmp_capabilities (the
     * fake server fails the test if anything comes before it) */
    pp_qmp_send(q, "query-status", NULL, 2000, a_reply, &r.a);
    g_main_loop_run(r.a.loop);
    assert_int_equal(r.calls, 1);
    assert_null(r.err);
    assert_ptr_equal(r.qmp, q);
    assert_string_equal(pp_qmp_version(r.qmp), "10.0.13");
    /* from here on it is an ordinary attached connection (the script
     * ends with an error reply to migrate and a close) */
    pp_qmp_send(r.qmp, "migrate", NULL, 2000, a_reply, &r.a);
    g_main_loop_run(r.a.loop);
    const char *want[] = { "event STOP", "reply running",
                           "error 6 migrate: There's a migration", "closed",
                           NULL };
    assert_log(&r.a, want);
    pp_qmp_free(r.qmp);
    fake_finish(&fs);
    g_ptr_array_unref(r.a.log);
    g_main_loop_unref(r.a.loop);
}

static void expect_handshake_failure(const char *transcript, int code,
                                     const char *needle, int timeout_ms)
{
    FakeServer fs;
    ReadyCtx r = { .a = { .loop = g_main_loop_new(NULL, FALSE),
                          .log = g_ptr_array_new_with_free_func(g_free) } };
    int fd = fake_start(&fs, transcript, NULL);

    pp_qmp_new_fd_async(fd, NULL, timeout_ms, a_event, a_closed, on_ready,
                        &r.a);
    g_main_loop_run(r.a.loop);
    assert_int_equal(r.calls, 1);
    assert_null(r.qmp);
    assert_non_null(r.err);
    if (!g_error_matches(r.err, PP_ERROR, code) ||
        !strstr(r.err->message, needle)) {
        fail_msg("%s: got %d '%s'", transcript, r.err->code, r.err->message);
    }
    /* the failed connection is not reported closed to the caller */
    assert_int_equal(r.a.closed, 0);
    fake_release(&fs);
    fake_finish(&fs);
    g_error_free(r.err);
    g_ptr_array_unref(r.a.log);
    g_main_loop_unref(r.a.loop);
}

static void test_async_handshake_failures(void **state)
{
    /* the connection closes on a protocol error; the reason is kept */
    expect_handshake_failure("not-qmp.txt", PP_ERROR_DISCONNECTED,
                             "QMP banner", 2000);
    expect_handshake_failure("caps-refused.txt", PP_ERROR_COMMAND,
                             "qmp_capabilities: capabilities refused", 2000);
}

/* A peer that never greets: the handshake gives up on time, from the
 * loop. */
static void test_async_handshake_timeout(void **state)
{
    int sv[2];
    ReadyCtx r = { .a = { .loop = g_main_loop_new(NULL, FALSE) } };
    gint64 t0 = g_get_monotonic_time();

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                     0);
    pp_qmp_new_fd_async(sv[0], NULL, 200, a_event, a_closed, on_ready, &r.a);
    g_main_loop_run(r.a.loop);
    assert_int_equal(r.calls, 1);
    assert_null(r.qmp);
    assert_true(g_error_matches(r.err, PP_ERROR, PP_ERROR_TIMEOUT));
    assert_true(g_get_monotonic_time() - t0 >= 190 * 1000);
    close(sv[1]);
    g_error_free(r.err);
    g_main_loop_unref(r.a.loop);
}

static void test_async_connect_refused(void **state)
{
    g_autoptr(GError) err = NULL;
    PpQmp *q = pp_qmp_connect_async("/nonexistent/qmp.sock", NULL, 1000,
                                    a_event, a_closed, on_ready, NULL, &err);

    /* a unix connect fails at once: said at once, no callback */
    assert_null(q);
    assert_non_null(strstr(err->message, "/nonexistent/qmp.sock"));
}

static gboolean quit_loop(gpointer loop)
{
    g_main_loop_quit(loop);
    return G_SOURCE_REMOVE;
}

/* Freed before it is ready: the handshake is cancelled, no call. */
static void test_async_handshake_cancelled(void **state)
{
    int sv[2];
    ReadyCtx r = { .a = { .loop = g_main_loop_new(NULL, FALSE) } };

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                     0);
    PpQmp *q = pp_qmp_new_fd_async(sv[0], NULL, 100, a_event, a_closed,
                                   on_ready, &r.a);
    pp_qmp_free(q);
    /* the 100 ms timer would have fired by now */
    GSource *t = g_timeout_source_new(300);
    g_source_set_callback(t, quit_loop, r.a.loop, NULL);
    g_source_attach(t, NULL);
    g_main_loop_run(r.a.loop);
    g_source_unref(t);
    assert_int_equal(r.calls, 0);
    close(sv[1]);
    g_main_loop_unref(r.a.loop);
}

static void test_async_timeout_and_late_reply(void **state)
{
    FakeServer fs;
    g_autoptr(GError) err = NULL;
    int fd = fake_start(&fs, "late-reply.txt", NULL);
    PpQmp *q = pp_qmp_new_fd(fd, 2000, &err);
    AsyncCtx c = { .loop = g_main_loop_new(NULL, FALSE),
                   .log = g_ptr_array_new_with_free_func(g_free) };

    pp_qmp_attach(q, NULL, a_event, a_closed, &c);
    pp_qmp_send(q, "query-status", NULL, 100, a_reply, &c);
    /* Let the first command time out before the second is sent. */
    while (c.log->len == 0) {
        g_main_context_iteration(NULL, TRUE);
    }
    pp_qmp_send(q, "query-migrate", NULL, 2000, a_reply, &c);
    g_main_loop_run(c.loop);
    const char *want[] = { "error 3 QMP command 'query-status' got no reply",
                           "reply completed", "closed", NULL };
    assert_int_equal(PP_ERROR_TIMEOUT, 3);
    assert_log(&c, want);
    pp_qmp_free(q);
    fake_finish(&fs);
    g_main_loop_unref(c.loop);
    g_ptr_array_unref(c.log);
}

static void test_async_free_in_callback(void **state)
{
    FakeServer fs;
    g_autoptr(GError) err = NULL;
    int fd = fake_start(&fs, "basic.txt", NULL);
    PpQmp *q = pp_qmp_new_fd(fd, 2000, &err);
    AsyncCtx c = { .loop = g_main_loop_new(NULL, FALSE),
                   .log = g_ptr_array_new_with_free_func(g_free),
                   .free_in_cb = true };

    pp_qmp_attach(q, NULL, a_event, a_closed, &c);
    pp_qmp_send(q, "query-status", NULL, 2000, a_reply, &c);
    pp_qmp_send(q, "migrate", NULL, 2000, a_reply, &c);
    g_main_loop_run(c.loop);
    /* Freed inside the first reply: no further callback ran. */
    while (g_main_context_iteration(NULL, FALSE)) {
    }
    const char *want[] = { "event STOP", "reply running", NULL };
    assert_log(&c, want);
    fake_finish(&fs);
    g_main_loop_unref(c.loop);
    g_ptr_array_unref(c.log);
}

static void count_timeout(PpQmp *q, json_object *ret, const GError *err,
                          gpointer opaque)
{
    int *n = opaque;

    if (err && err->code == PP_ERROR_TIMEOUT) {
        (*n)++;
    }
}

/* A monitor that stops reading must not block the loop: 4 MiB of requests
 * queue up while the peer hangs, and every command times out.  The peer
 * is released only after that; a blocking send would have waited for the
 * peer's 30 s cap instead, which the test detects. */
static void test_async_stalled_peer(void **state)
{
    FakeServer fs;
    g_autoptr(GError) err = NULL;
    int fd = fake_start(&fs, "stall.txt", NULL);
    PpQmp *q = pp_qmp_new_fd(fd, 2000, &err);
    g_autofree char *big = g_strnfill(64 * 1024, 'x');
    int timeouts = 0;

    assert_non_null(q);
    pp_qmp_attach(q, NULL, NULL, NULL, NULL);
    for (int i = 0; i < 64; i++) {
        json_object *args = json_object_new_object();
        json_object_object_add(args, "pad", json_object_new_string(big));
        pp_qmp_send(q, "query-status", args, 200, count_timeout, &timeouts);
    }
    while (timeouts < 64) {
        g_main_context_iteration(NULL, TRUE);
    }
    g_mutex_lock(&fs.lock);
    bool expired = fs.stall_expired;
    g_mutex_unlock(&fs.lock);
    assert_false(expired);
    fake_release(&fs);
    pp_qmp_free(q);
    fake_finish(&fs);
}

static void test_async_garbage_closes(void **state)
{
    FakeServer fs;
    g_autoptr(GError) err = NULL;
    int fd = fake_start(&fs, "garbage.txt", NULL);
    PpQmp *q = pp_qmp_new_fd(fd, 2000, &err);
    AsyncCtx c = { .loop = g_main_loop_new(NULL, FALSE),
                   .log = g_ptr_array_new_with_free_func(g_free) };

    pp_qmp_attach(q, NULL, a_event, a_closed, &c);
    pp_qmp_send(q, "query-status", NULL, 2000, a_reply, &c);
    g_main_loop_run(c.loop);
    const char *want[] = { "error 5 QMP peer sent malformed JSON", "closed",
                           NULL };
    assert_log(&c, want);
    pp_qmp_free(q);
    fake_finish(&fs);
    g_main_loop_unref(c.loop);
    g_ptr_array_unref(c.log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_split_reads),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_eof_mid_reply),
        cmocka_unit_test(test_unknown_id),
        cmocka_unit_test(test_non_object),
        cmocka_unit_test(test_null_and_wrong_types),
        cmocka_unit_test(test_huge_message),
        cmocka_unit_test(test_not_qmp),
        cmocka_unit_test(test_late_reply_dropped),
        cmocka_unit_test(test_connect_errors),
        cmocka_unit_test(test_greeting_timeout),
        cmocka_unit_test(test_stale_before_greeting),
        cmocka_unit_test(test_async_basic),
        cmocka_unit_test(test_async_handshake),
        cmocka_unit_test(test_async_handshake_failures),
        cmocka_unit_test(test_async_handshake_timeout),
        cmocka_unit_test(test_async_connect_refused),
        cmocka_unit_test(test_async_handshake_cancelled),
        cmocka_unit_test(test_async_timeout_and_late_reply),
        cmocka_unit_test(test_async_free_in_callback),
        cmocka_unit_test(test_async_garbage_closes),
        cmocka_unit_test(test_async_stalled_peer),
    };
    return cmocka_run_group_tests_name("qmp", tests, NULL, NULL);
}
