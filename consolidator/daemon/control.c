/*
 * The control socket and the read-only query socket: unix stream sockets
 * in the state directory.  A client sends one JSON request per line,
 *     {"command": "migrate", "arguments": {"vm": "vm0", "host": "pm1"}}
 * and gets one JSON reply per line: {"return": ...} or {"error": "..."}.
 * Requests are bounded (64 KiB) and untrusted: every member is read with
 * its type checked (ppjson.h), anything malformed gets an error reply.
 * The control socket admits root, the daemon's user and control_group
 * (SO_PEERCRED); the query socket anyone, for queries only.  Replies are
 * written without blocking: a slow client never holds up the main loop.
 *
 * Commands: status, hosts, vms, jobs, plan (queries), migrate (vm, host,
 * [mode]), cancel, pause, recover (job), stop ([vms]).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "daemon.h"
#include "pp-error.h"
#include "ppjson.h"
#include "unixsock.h"

#include <errno.h>
#include <grp.h>
#include <glib-unix.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_REQUEST (64 * 1024)

static json_object *host_json(PpDaemon *d, Host *h)
{
    json_object *o = json_object_new_object();
    json_object *vms = json_object_new_array();

    json_object_object_add(o, "name", json_object_new_string(h->name));
    json_object_object_add(o, "where", json_object_new_string(h->where));
    json_object_object_add(o, "cpus", json_object_new_int((int)h->ncpus));
    json_object_object_add(o, "up", json_object_new_boolean(h->up));
    json_object_object_add(o, "power",
                           json_object_new_string(pp_host_power_name(h->power)));
    json_object_object_add(o, "cpu", json_object_new_double(h->cpu));
    json_object_object_add(o, "address", json_object_new_string(h->addr));
    json_object_object_add(o, "memory-mib",
                           json_object_new_int64((gint64)h->mem_mib));
    for (guint i = 0; i < d->vms->len; i++) {
        Vm *vm = d->vms->pdata[i];
        if (vm->host == h && vm->state != VM_LOST) {
            json_object_array_add(vms, json_object_new_string(vm->name));
        }
    }
    json_object_object_add(o, "vms", vms);
    return o;
}

static const char *vm_state_name(VmState s)
{
    switch (s) {
    case VM_RUNNING:
        return "running";
    case VM_MIGRATING:
        return "migrating";
    case VM_BROKEN:
        return "broken";
    default:
        return "lost";
    }
}

static json_object *vm_json(PpDaemon *d, Vm *vm)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "name", json_object_new_string(vm->name));
    json_object_object_add(o, "host",
                           json_object_new_string(vm_guest_host(vm)->name));
    json_object_object_add(o, "state",
                           json_object_new_string(vm_state_name(vm->state)));
    json_object_object_add(o, "cpu", json_object_new_double(vm->cpu));
    json_object_object_add(o, "process-cpu",
                           json_object_new_double(vm->proc_cpu));
    json_object_object_add(o, "memory-mib",
                           json_object_new_int64((gint64)vm->mem_mib));
    json_object_object_add(o, "job", vm->job ?
                           json_object_new_int64(vm->job->id) : NULL);
    d->drv->ops->vm_describe(d->drv, vm, o);
    return o;
}

static json_object *plan_json(PpPlan *plan)
{
    json_object *o = json_object_new_object();
    json_object *moves = json_object_new_array();
    json_object *notes = json_object_new_array();

    for (guint i = 0; i < plan->moves->len; i++) {
        PpMove *m = plan->moves->pdata[i];
        json_object *mo = json_object_new_object();
        json_object_object_add(mo, "vm", json_object_new_string(m->vm));
        json_object_object_add(mo, "from", json_object_new_string(m->from));
        json_object_object_add(mo, "to", json_object_new_string(m->to));
        json_object_object_add(mo, "reason", json_object_new_string(m->reason));
        json_object_object_add(mo, "method",
                               json_object_new_string(pp_method_name(m->method)));
        json_object_array_add(moves, mo);
    }
    json_object *power = json_object_new_array();
    for (guint i = 0; i < plan->power->len; i++) {
        PpPowerAction *a = plan->power->pdata[i];
        json_object *pa = json_object_new_object();
        json_object_object_add(pa, "host", json_object_new_string(a->host));
        json_object_object_add(pa, "action",
                               json_object_new_string(a->on ? "on" : "off"));
        json_object_object_add(pa, "reason", json_object_new_string(a->reason));
        json_object_array_add(power, pa);
    }
    json_object_object_add(o, "power", power);
    for (guint i = 0; i < plan->notes->len; i++) {
        json_object_array_add(notes,
                              json_object_new_string(plan->notes->pdata[i]));
    }
    json_object_object_add(o, "moves", moves);
    json_object_object_add(o, "notes", notes);
    json_object_object_add(o, "warning", json_object_new_boolean(plan->warning));
    return o;
}

/* Argument @key of @cmd: absent is fine (*@out untouched), null or
 * another type is the client's error. */
static bool arg_opt(const char *cmd, json_object *args, const char *key,
                    json_type type, void *out, GError **errp)
{
    g_autoptr(GError) err = NULL;
    bool ok;

    if (!args) {
        return true;
    }
    switch (type) {
    case json_type_string:
        ok = pp_json_opt_str(args, key, out, &err);
        break;
    case json_type_int:
        ok = pp_json_opt_int(args, key, out, &err);
        break;
    case json_type_boolean:
        ok = pp_json_opt_bool(args, key, out, &err);
        break;
    default:
        g_assert_not_reached();
    }
    if (!ok) {
        const char *m = err->message;
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID, "%s: argument %s", cmd,
                    g_str_has_prefix(m, "member ") ? m + strlen("member ") : m);
    }
    return ok;
}

/* Returns the "return" value, or NULL with @errp set. */
static json_object *handle(PpDaemon *d, const char *cmd, json_object *args,
                           GError **errp)
{
    if (strcmp(cmd, "status") == 0) {
        json_object *o = json_object_new_object();
        g_autofree char *mode = pp_mig_mode_str(&d->cfg->mode);
        json_object *active = json_object_new_array();
        for (guint i = 0; i < d->jobs->len; i++) {
            Job *j = d->jobs->pdata[i];
            if (job_is_active(j)) {
                json_object_array_add(active, job_to_json(j));
            }
        }
        json_object_object_add(o, "instance",
                               json_object_new_string(d->cfg->instance));
        json_object_object_add(o, "uptime", json_object_new_double(
                                   pp_wall_now() - d->started));
        json_object_object_add(o, "driver",
                               json_object_new_string(d->drv->ops->name));
        json_object_object_add(o, "policy",
                               json_object_new_string(d->cfg->policy_name));
        json_object_object_add(o, "mode", json_object_new_string(mode));
        json_object_object_add(o, "autopilot",
                               json_object_new_boolean(d->cfg->autopilot));
        json_object_object_add(o, "hosts", json_object_new_int(
                                   (int)d->hosts->len));
        json_object_object_add(o, "vms", json_object_new_int(
                                   (int)d->vms->len));
        json_object_object_add(o, "database",
                               json_object_new_string(d->cfg->database));
        json_object_object_add(o, "active-jobs", active);
        return o;
    }
    if (strcmp(cmd, "hosts") == 0) {
        json_object *a = json_object_new_array();
        for (guint i = 0; i < d->hosts->len; i++) {
            json_object_array_add(a, host_json(d, d->hosts->pdata[i]));
        }
        return a;
    }
    if (strcmp(cmd, "vms") == 0) {
        json_object *a = json_object_new_array();
        for (guint i = 0; i < d->vms->len; i++) {
            json_object_array_add(a, vm_json(d, d->vms->pdata[i]));
        }
        return a;
    }
    if (strcmp(cmd, "jobs") == 0) {
        json_object *a = json_object_new_array();
        for (guint i = 0; i < d->jobs->len; i++) {
            json_object_array_add(a, job_to_json(d->jobs->pdata[i]));
        }
        return a;
    }
    if (strcmp(cmd, "plan") == 0) {
        g_autoptr(PpPlan) plan = pp_daemon_plan(d);
        return plan_json(plan);
    }
    if (strcmp(cmd, "migrate") == 0) {
        const char *vmn = NULL, *hn = NULL, *ms = NULL;
        PpMigMode mode = d->cfg->mode;
        Vm *vm;
        Host *h;
        Job *job;

        if (!arg_opt(cmd, args, "vm", json_type_string, &vmn, errp) ||
            !arg_opt(cmd, args, "host", json_type_string, &hn, errp) ||
            !arg_opt(cmd, args, "mode", json_type_string, &ms, errp)) {
            return NULL;
        }
        if (!vmn || !hn) {
            g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                        "migrate needs arguments 'vm' and 'host'");
            return NULL;
        }
        if (!(vm = pp_daemon_vm(d, vmn))) {
            g_set_error(errp, PP_ERROR, PP_ERROR_INVALID, "no VM '%s'", vmn);
            return NULL;
        }
        if (!(h = pp_daemon_host(d, hn))) {
            g_set_error(errp, PP_ERROR, PP_ERROR_INVALID, "no host '%s'", hn);
            return NULL;
        }
        if (ms && !pp_mig_mode_parse(ms, &mode, errp)) {
            return NULL;
        }
        if (pp_daemon_active_jobs(d) >= d->cfg->max_moves) {
            g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                        "%u move(s) already in flight (max_concurrent_moves)",
                        pp_daemon_active_jobs(d));
            return NULL;
        }
        job = job_start(d, vm, h, &mode, "manual", errp);
        return job ? job_to_json(job) : NULL;
    }
    if (strcmp(cmd, "power") == 0) {
        const char *hn = NULL, *act = NULL;
        Host *h;

        if (!arg_opt(cmd, args, "host", json_type_string, &hn, errp) ||
            !arg_opt(cmd, args, "action", json_type_string, &act, errp)) {
            return NULL;
        }
        if (!hn || !act || (strcmp(act, "on") && strcmp(act, "off"))) {
            g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                        "power needs arguments 'host' and 'action' (on or "
                        "off)");
            return NULL;
        }
        if (!(h = pp_daemon_host(d, hn))) {
            g_set_error(errp, PP_ERROR, PP_ERROR_INVALID, "no host '%s'", hn);
            return NULL;
        }
        if (!(strcmp(act, "on") == 0 ?
              pp_host_power_on(d, h, "manual", errp) :
              pp_host_power_off(d, h, "manual", errp))) {
            return NULL;
        }
        return host_json(d, h);
    }
    if (strcmp(cmd, "cancel") == 0 || strcmp(cmd, "pause") == 0 ||
        strcmp(cmd, "recover") == 0) {
        gint64 id = -1;
        Job *job = NULL;
        bool ok;

        if (!arg_opt(cmd, args, "job", json_type_int, &id, errp)) {
            return NULL;
        }
        if (id < 0) {
            g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                        "%s needs an integer argument 'job'", cmd);
            return NULL;
        }
        for (guint i = 0; i < d->jobs->len && !job; i++) {
            Job *j = d->jobs->pdata[i];
            if (j->id == id) {
                job = j;
            }
        }
        if (!job) {
            g_set_error(errp, PP_ERROR, PP_ERROR_INVALID, "no job %"
                        G_GINT64_FORMAT " in this run", id);
            return NULL;
        }
        ok = strcmp(cmd, "cancel") == 0 ? job_cancel(job, errp) :
             strcmp(cmd, "pause") == 0 ? job_pause(job, errp) :
             job_recover(job, errp);
        return ok ? job_to_json(job) : NULL;
    }
    if (strcmp(cmd, "stop") == 0) {
        bool vms = false;

        if (!arg_opt(cmd, args, "vms", json_type_boolean, &vms, errp)) {
            return NULL;
        }
        if (vms && !d->drv->ops->owns_vms) {
            g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                        "the %s driver does not own its VMs and never stops "
                        "them; stop without --vms", d->drv->ops->name);
            return NULL;
        }
        d->stop_vms = vms;
        pp_daemon_event(d, "stop", NULL, "%s", d->stop_vms ?
                        "stopping with the VMs, as asked" :
                        "stopping; the VMs keep running");
        g_main_loop_quit(d->loop);
        return json_object_new_object();
    }
    g_set_error(errp, PP_ERROR, PP_ERROR_INVALID, "unknown command '%s'",
                cmd);
    return NULL;
}

bool pp_control_is_query(const char *cmd)
{
    static const char *const queries[] = {
        "status", "hosts", "vms", "jobs", "plan", NULL
    };

    return g_strv_contains(queries, cmd);
}

static json_object *error_reply(const char *msg)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "error", json_object_new_string(msg));
    return o;
}

json_object *pp_control_request(PpDaemon *d, const char *line, bool read_only)
{
    g_autoptr(json_object) req = json_tokener_parse(line);
    g_autoptr(GError) err = NULL;
    json_object *args = NULL, *ret, *o;
    const char *cmd = NULL;

    if (!req || !pp_json_get_str(req, "command", &cmd, NULL) ||
        !pp_json_opt_obj(req, "arguments", &args, NULL)) {
        return error_reply("expected {\"command\": NAME, \"arguments\": "
                           "{...}}");
    }
    if (read_only && !pp_control_is_query(cmd)) {
        g_autofree char *m = g_strdup_printf(
            "'%s' is not a query: this is the read-only query socket; use "
            "the control socket", cmd);
        return error_reply(m);
    }
    ret = handle(d, cmd, args, &err);
    if (!ret) {
        return error_reply(err->message);
    }
    o = json_object_new_object();
    json_object_object_add(o, "return", ret);
    return o;
}

/* ---- the sockets ---- */

typedef struct Client {
    PpDaemon *d;
    int fd;
    bool read_only;
    GString *in, *out;
    guint in_source, out_source;
    bool closing;           /* the client sent EOF: free once flushed */
} Client;

/* Replies not yet read by a client, at most: a client that stops reading
 * is dropped rather than kept in memory (nothing ever waits for it). */
#define MAX_PENDING_OUTPUT (16 * 1024 * 1024)

static void client_free(Client *c)
{
    if (c->in_source) {
        g_source_remove(c->in_source);
    }
    if (c->out_source) {
        g_source_remove(c->out_source);
    }
    close(c->fd);
    g_string_free(c->in, TRUE);
    g_string_free(c->out, TRUE);
    g_free(c);
}

static gboolean on_writable(gint fd, GIOCondition cond, gpointer opaque);

/* Send what the socket takes now; false when the client is gone. */
static bool client_flush(Client *c)
{
    while (c->out->len > 0) {
        ssize_t n = send(c->fd, c->out->str, c->out->len,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        if (n <= 0) {
            return false;
        }
        g_string_erase(c->out, 0, n);
    }
    if (c->out->len > 0 && !c->out_source) {
        c->out_source = g_unix_fd_add(c->fd, G_IO_OUT, on_writable, c);
    } else if (c->out->len == 0 && c->out_source) {
        g_source_remove(c->out_source);
        c->out_source = 0;
    }
    return true;
}

static gboolean on_writable(gint fd, GIOCondition cond, gpointer opaque)
{
    Client *c = opaque;

    if (!client_flush(c)) {
        c->out_source = 0;
        client_free(c);
        return G_SOURCE_REMOVE;
    }
    if (c->out->len == 0) {
        /* client_flush() removed this source; keep GLib from doing it
         * again. */
        if (c->closing) {
            client_free(c);
        }
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

static void queue_reply(Client *c, json_object *o)
{
    g_string_append(c->out, json_object_to_json_string_ext(
                        o, JSON_C_TO_STRING_PLAIN));
    g_string_append_c(c->out, '\n');
}

static gboolean on_client(gint fd, GIOCondition cond, gpointer opaque)
{
    Client *c = opaque;
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    char *nl;

    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return G_SOURCE_CONTINUE;
    }
    if (n <= 0) {
        c->in_source = 0;
        /* A client that half-closed after its requests still gets every
         * reply (a reply longer than the socket buffer is still queued). */
        if (n == 0 && c->out->len > 0 && client_flush(c) && c->out->len > 0) {
            c->closing = true;
            return G_SOURCE_REMOVE;
        }
        client_free(c);
        return G_SOURCE_REMOVE;
    }
    g_string_append_len(c->in, buf, n);
    while ((nl = memchr(c->in->str, '\n', c->in->len))) {
        g_autofree char *line = g_strndup(c->in->str, nl - c->in->str);
        g_string_erase(c->in, 0, nl - c->in->str + 1);
        g_autoptr(json_object) r = pp_control_request(c->d, line,
                                                      c->read_only);
        queue_reply(c, r);
    }
    if (c->in->len > MAX_REQUEST) {
        g_autoptr(json_object) r = error_reply("request too large");
        queue_reply(c, r);
        client_flush(c);
        c->in_source = 0;
        client_free(c);
        return G_SOURCE_REMOVE;
    }
    if (!client_flush(c) || c->out->len > MAX_PENDING_OUTPUT) {
        c->in_source = 0;
        client_free(c);
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

/*
 * Who may use the control socket: root, the daemon's own user, and
 * members of control_group (primary or supplementary group of the peer
 * process, as the kernel reports them).  The socket's file mode is a
 * first fence; this is the one that holds when the mode is changed.
 */
static bool peer_allowed(PpDaemon *d, int fd, char **why)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        *why = g_strdup_printf("cannot read the peer's credentials: %s",
                               g_strerror(errno));
        return false;
    }
    if (cred.uid == 0 || cred.uid == geteuid()) {
        return true;
    }
    if (d->control_gid != (gid_t)-1) {
        gid_t groups[256];
        socklen_t glen = sizeof(groups);

        if (cred.gid == d->control_gid) {
            return true;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) == 0) {
            for (size_t i = 0; i < glen / sizeof(gid_t); i++) {
                if (groups[i] == d->control_gid) {
                    return true;
                }
            }
        }
    }
    *why = g_strdup_printf("permission denied: uid %u is not root, the "
                           "daemon's user%s%s%s", (unsigned)cred.uid,
                           d->cfg->control_group ? " or in group '" : "",
                           d->cfg->control_group ? d->cfg->control_group : "",
                           d->cfg->control_group ? "'" : "");
    return false;
}

static gboolean accept_client(PpDaemon *d, int lfd, bool read_only)
{
    int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    g_autofree char *why = NULL;
    Client *c;

    if (cfd < 0) {
        return G_SOURCE_CONTINUE;
    }
    if (!read_only && !peer_allowed(d, cfd, &why)) {
        g_autoptr(json_object) r = error_reply(why);
        const char *line = json_object_to_json_string_ext(
            r, JSON_C_TO_STRING_PLAIN);

        /* best effort, never blocking: the socket is non-blocking */
        if (send(cfd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT) > 0) {
            send(cfd, "\n", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        pp_daemon_event(d, "warning", NULL, "control socket: %s", why);
        close(cfd);
        return G_SOURCE_CONTINUE;
    }
    c = g_new0(Client, 1);
    c->d = d;
    c->fd = cfd;
    c->read_only = read_only;
    c->in = g_string_new(NULL);
    c->out = g_string_new(NULL);
    c->in_source = g_unix_fd_add(cfd, G_IO_IN | G_IO_HUP | G_IO_ERR,
                                 on_client, c);
    return G_SOURCE_CONTINUE;
}

static gboolean on_accept(gint fd, GIOCondition cond, gpointer opaque)
{
    return accept_client(opaque, fd, false);
}

static gboolean on_accept_query(gint fd, GIOCondition cond, gpointer opaque)
{
    return accept_client(opaque, fd, true);
}

/* Listen on @path with file mode @mode (group @gid when not -1). */
static int listen_at(const char *path, mode_t mode, gid_t gid, GError **errp)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "socket path '%s' is too long", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    /* Refuse to steal the socket of a running instance. */
    fd = pp_unix_connect(path, "socket", NULL);
    if (fd >= 0) {
        close(fd);
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "another consolidator is listening on '%s'", path);
        return -1;
    }
    unlink(path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    /* Created with no access at all, opened up once it has its group. */
    mode_t old = umask(0777);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        umask(old);
        g_set_error(errp, PP_ERROR, PP_ERROR_IO,
                    "cannot listen on '%s': %s", path, g_strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    umask(old);
    if ((gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) < 0) ||
        chmod(path, mode) < 0 || listen(fd, 16) < 0) {
        g_set_error(errp, PP_ERROR, PP_ERROR_IO,
                    "cannot set up '%s': %s", path, g_strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    return fd;
}

bool pp_control_listen(PpDaemon *d, GError **errp)
{
    d->control_gid = (gid_t)-1;
    if (d->cfg->control_group) {
        struct group *gr = getgrnam(d->cfg->control_group);

        if (!gr) {
            g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                        "%s: control_group: no group '%s' on this system",
                        d->cfg->path, d->cfg->control_group);
            return false;
        }
        d->control_gid = gr->gr_gid;
    }
    d->listen_fd = listen_at(d->cfg->socket,
                             d->control_gid != (gid_t)-1 ? 0660 : 0600,
                             d->control_gid, errp);
    if (d->listen_fd < 0) {
        return false;
    }
    d->listen_source = g_unix_fd_add(d->listen_fd, G_IO_IN, on_accept, d);
    if (d->cfg->query_socket) {
        d->query_fd = listen_at(d->cfg->query_socket, 0666, (gid_t)-1, errp);
        if (d->query_fd < 0) {
            return false;
        }
        d->query_source = g_unix_fd_add(d->query_fd, G_IO_IN,
                                        on_accept_query, d);
    }
    return true;
}

void pp_control_close(PpDaemon *d)
{
    if (d->listen_source) {
        g_source_remove(d->listen_source);
        d->listen_source = 0;
    }
    if (d->listen_fd >= 0) {
        close(d->listen_fd);
        d->listen_fd = -1;
        unlink(d->cfg->socket);
    }
    if (d->query_source) {
        g_source_remove(d->query_source);
        d->query_source = 0;
    }
    if (d->query_fd >= 0) {
        close(d->query_fd);
        d->query_fd = -1;
        unlink(d->cfg->query_socket);
    }
}
