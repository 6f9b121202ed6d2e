/*
 * The control socket: a unix stream socket (mode 0600) in the state
 * directory.  A client sends one JSON request per line,
 *     {"command": "migrate", "arguments": {"vm": "vm0", "host": "pm1"}}
 * and gets one JSON reply per line: {"return": ...} or {"error": "..."}.
 * Requests are bounded (64 KiB) and untrusted: anything malformed gets an
 * error reply, never a crash.
 *
 * Commands: status, hosts, vms, jobs, plan, migrate (vm, host, [mode]),
 * cancel (job), stop ([vms]).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "daemon.h"
#include "pp-error.h"
#include "unixsock.h"

#include <errno.h>
#include <glib-unix.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_REQUEST (64 * 1024)

typedef struct Client {
    PpDaemon *d;
    int fd;
    GString *in;
    guint source;
} Client;

static json_object *host_json(PpDaemon *d, Host *h)
{
    json_object *o = json_object_new_object();
    json_object *vms = json_object_new_array();

    json_object_object_add(o, "name", json_object_new_string(h->name));
    json_object_object_add(o, "where", json_object_new_string(h->where));
    json_object_object_add(o, "cpus", json_object_new_int((int)h->ncpus));
    json_object_object_add(o, "up", json_object_new_boolean(h->up));
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
        json_object_array_add(moves, mo);
    }
    for (guint i = 0; i < plan->notes->len; i++) {
        json_object_array_add(notes,
                              json_object_new_string(plan->notes->pdata[i]));
    }
    json_object_object_add(o, "moves", moves);
    json_object_object_add(o, "notes", notes);
    json_object_object_add(o, "warning", json_object_new_boolean(plan->warning));
    return o;
}

static const char *arg_str(json_object *args, const char *key)
{
    json_object *v;

    if (!args || !json_object_object_get_ex(args, key, &v) ||
        !json_object_is_type(v, json_type_string)) {
        return NULL;
    }
    return json_object_get_string(v);
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
        const char *vmn = arg_str(args, "vm"), *hn = arg_str(args, "host");
        const char *ms = arg_str(args, "mode");
        PpMigMode mode = d->cfg->mode;
        Vm *vm;
        Host *h;
        Job *job;

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
    if (strcmp(cmd, "cancel") == 0 || strcmp(cmd, "pause") == 0 ||
        strcmp(cmd, "recover") == 0) {
        json_object *id;
        Job *job = NULL;
        bool ok;

        if (!args || !json_object_object_get_ex(args, "job", &id) ||
            !json_object_is_type(id, json_type_int)) {
            g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                        "%s needs an integer argument 'job'", cmd);
            return NULL;
        }
        for (guint i = 0; i < d->jobs->len && !job; i++) {
            Job *j = d->jobs->pdata[i];
            if (j->id == json_object_get_int64(id)) {
                job = j;
            }
        }
        if (!job) {
            g_set_error(errp, PP_ERROR, PP_ERROR_INVALID, "no job %"
                        G_GINT64_FORMAT " in this run",
                        json_object_get_int64(id));
            return NULL;
        }
        ok = strcmp(cmd, "cancel") == 0 ? job_cancel(job, errp) :
             strcmp(cmd, "pause") == 0 ? job_pause(job, errp) :
             job_recover(job, errp);
        return ok ? job_to_json(job) : NULL;
    }
    if (strcmp(cmd, "stop") == 0) {
        json_object *vms = NULL;
        if (args && json_object_object_get_ex(args, "vms", &vms) &&
            !json_object_is_type(vms, json_type_boolean)) {
            g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                        "stop: argument 'vms' must be true or false");
            return NULL;
        }
        if (vms && json_object_get_boolean(vms) && !d->drv->ops->owns_vms) {
            g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                        "the %s driver does not own its VMs and never stops "
                        "them; stop without --vms", d->drv->ops->name);
            return NULL;
        }
        d->stop_vms = vms && json_object_get_boolean(vms);
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

static void client_free(Client *c)
{
    if (c->source) {
        g_source_remove(c->source);
    }
    close(c->fd);
    g_string_free(c->in, TRUE);
    g_free(c);
}

static void reply(Client *c, json_object *ret, const char *error)
{
    g_autoptr(json_object) o = json_object_new_object();

    if (error) {
        json_object_object_add(o, "error", json_object_new_string(error));
    } else {
        json_object_object_add(o, "return", ret);
    }
    g_autofree char *line = g_strdup_printf(
        "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    /* A client that went away just misses its reply. */
    pp_send_all(c->fd, line, strlen(line));
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
        c->source = 0;
        client_free(c);
        return G_SOURCE_REMOVE;
    }
    g_string_append_len(c->in, buf, n);
    if (c->in->len > MAX_REQUEST) {
        reply(c, NULL, "request too large");
        c->source = 0;
        client_free(c);
        return G_SOURCE_REMOVE;
    }
    while ((nl = memchr(c->in->str, '\n', c->in->len))) {
        g_autofree char *line = g_strndup(c->in->str, nl - c->in->str);
        g_string_erase(c->in, 0, nl - c->in->str + 1);
        g_autoptr(json_object) req = json_tokener_parse(line);
        json_object *cmd, *args = NULL;
        g_autoptr(GError) err = NULL;

        if (!req || !json_object_is_type(req, json_type_object) ||
            !json_object_object_get_ex(req, "command", &cmd) ||
            !json_object_is_type(cmd, json_type_string)) {
            reply(c, NULL, "expected {\"command\": NAME, \"arguments\": {...}}");
            continue;
        }
        json_object_object_get_ex(req, "arguments", &args);
        json_object *ret = handle(c->d, json_object_get_string(cmd), args,
                                  &err);
        reply(c, ret, ret ? NULL : err->message);
    }
    return G_SOURCE_CONTINUE;
}

static gboolean on_accept(gint fd, GIOCondition cond, gpointer opaque)
{
    PpDaemon *d = opaque;
    /* Blocking for replies, bounded by a send timeout: a reply goes out
     * whole or the client is dropped.  Reads use MSG_DONTWAIT. */
    int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    struct timeval tv = { .tv_sec = 2 };
    Client *c;

    if (cfd < 0) {
        return G_SOURCE_CONTINUE;
    }
    setsockopt(cfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    c = g_new0(Client, 1);
    c->d = d;
    c->fd = cfd;
    c->in = g_string_new(NULL);
    c->source = g_unix_fd_add(cfd, G_IO_IN | G_IO_HUP | G_IO_ERR, on_client,
                              c);
    return G_SOURCE_CONTINUE;
}

bool pp_control_listen(PpDaemon *d, GError **errp)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    const char *path = d->cfg->socket;
    mode_t old;
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "control socket path '%s' is too long", path);
        return false;
    }
    strcpy(sa.sun_path, path);
    /* Refuse to steal the socket of a running instance. */
    fd = pp_unix_connect(path, "control socket", NULL);
    if (fd >= 0) {
        close(fd);
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "another consolidator is listening on '%s'", path);
        return false;
    }
    unlink(path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    old = umask(0177);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(fd, 16) < 0) {
        umask(old);
        g_set_error(errp, PP_ERROR, PP_ERROR_IO,
                    "cannot listen on '%s': %s", path, g_strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return false;
    }
    umask(old);
    d->listen_fd = fd;
    d->listen_source = g_unix_fd_add(fd, G_IO_IN, on_accept, d);
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
}
