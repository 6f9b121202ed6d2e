/*
 * The consolidator daemon: monitor (1 Hz samples into the store), policy
 * (windowed averages in, plan out) and controller (migration jobs), all on
 * one GLib main loop; the driver (driver.h) reaches hosts and VMs.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "daemon.h"
#include "pp-error.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

double pp_wall_now(void)
{
    return g_get_real_time() / 1e6;
}

void pp_daemon_event(PpDaemon *d, const char *kind, const char *vm,
                     const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(GDateTime) now = g_date_time_new_now_local();
    g_autofree char *ts = g_date_time_format(now, "%H:%M:%S");
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s.%03d %s%s%s: %s\n", ts,
            g_date_time_get_microsecond(now) / 1000, kind, vm ? " " : "",
            vm ? vm : "", msg);
    if (d->store && !pp_store_add_event(d->store, pp_wall_now(), kind, vm,
                                        msg, &err)) {
        fprintf(stderr, "warning: cannot record event: %s\n", err->message);
    }
}

Host *pp_daemon_host(PpDaemon *d, const char *name)
{
    for (guint i = 0; i < d->hosts->len; i++) {
        Host *h = d->hosts->pdata[i];
        if (strcmp(h->name, name) == 0) {
            return h;
        }
    }
    return NULL;
}

Vm *pp_daemon_vm(PpDaemon *d, const char *name)
{
    for (guint i = 0; i < d->vms->len; i++) {
        Vm *v = d->vms->pdata[i];
        if (strcmp(v->name, name) == 0) {
            return v;
        }
    }
    return NULL;
}

guint pp_daemon_active_jobs(PpDaemon *d)
{
    guint n = 0;

    for (guint i = 0; i < d->jobs->len; i++) {
        n += job_is_active(d->jobs->pdata[i]);
    }
    return n;
}

/* ---- what drivers report ---- */

Vm *pp_daemon_add_vm(PpDaemon *d, const char *name, Host *host,
                     guint64 mem_mib, guint vcpus, void *priv)
{
    Vm *vm = g_new0(Vm, 1);

    vm->d = d;
    vm->name = g_strdup(name);
    vm->host = host;
    vm->mem_mib = mem_mib;
    vm->vcpus = vcpus;
    vm->priv = priv;
    pp_vm_stats_init(&vm->last);
    g_ptr_array_add(d->vms, vm);
    return vm;
}

void pp_daemon_vm_lost(PpDaemon *d, Vm *vm, const char *why)
{
    if (vm->state == VM_LOST) {
        return;
    }
    vm->state = VM_LOST;
    pp_daemon_event(d, "vm-lost", vm->name, "%s", why);
}

void pp_daemon_sample_host(PpDaemon *d, Host *h, double t, double cpu,
                           double mem_used_mib, double mem_total_mib)
{
    g_autoptr(GError) err = NULL;

    h->cpu = cpu;
    h->mem_used_mib = mem_used_mib;
    h->mem_total_mib = mem_total_mib;
    if (!pp_store_add_host_sample(d->store, t, h->name, cpu, mem_used_mib,
                                  mem_total_mib, &err)) {
        fprintf(stderr, "warning: %s\n", err->message);
    }
}

void pp_daemon_sample_vm(PpDaemon *d, Vm *vm, double t, PpVmStats *st)
{
    g_autoptr(GError) err = NULL;

    st->mem_mib = vm->mem_mib;
    vm->cpu = st->cpu;
    vm->proc_cpu = st->proc_cpu;
    vm->last = *st;
    if (!pp_store_add_vm_sample(d->store, t, vm->name,
                                vm_guest_host(vm)->name, st, &err)) {
        fprintf(stderr, "warning: %s\n", err->message);
    }
}

const PpJobRow *pp_daemon_stale_job(PpDaemon *d, const char *vm)
{
    const PpJobRow *found = NULL;

    for (guint i = 0; d->stale_jobs && i < d->stale_jobs->len; i++) {
        const PpJobRow *r = d->stale_jobs->pdata[i];
        if (strcmp(r->vm, vm) == 0 && (!found || r->id > found->id)) {
            found = r;
        }
    }
    return found;
}

void pp_daemon_end_stale_job(PpDaemon *d, const PpJobRow *row,
                             const char *phase, const char *detail)
{
    pp_store_job_update(d->store, row->id, pp_wall_now(), phase, detail,
                        NULL);
    pp_daemon_event(d, "move-phase", row->vm, "job %" G_GINT64_FORMAT
                    " %s -> %s of a previous run (left in phase %s): %s: %s",
                    row->id, row->from, row->to, row->phase, phase, detail);
    g_ptr_array_remove(d->stale_jobs, (gpointer)row);
}

/* ---- monitor ---- */

static gboolean on_sample(gpointer opaque)
{
    PpDaemon *d = opaque;
    double t = pp_wall_now();
    g_autoptr(GError) err = NULL;

    if (!pp_store_begin(d->store, &err)) {
        fprintf(stderr, "warning: %s\n", err->message);
        return G_SOURCE_CONTINUE;
    }
    d->drv->ops->sample(d->drv, t);
    if (!pp_store_commit(d->store, &err)) {
        fprintf(stderr, "warning: %s\n", err->message);
    }
    return G_SOURCE_CONTINUE;
}

static gboolean on_prune(gpointer opaque)
{
    PpDaemon *d = opaque;
    g_autoptr(GError) err = NULL;

    if (!pp_store_prune(d->store, pp_wall_now() - d->cfg->retention, &err)) {
        fprintf(stderr, "warning: %s\n", err->message);
    }
    return G_SOURCE_CONTINUE;
}

/* ---- policy ---- */

PpPlan *pp_daemon_plan(PpDaemon *d)
{
    double now = pp_wall_now();
    double window = d->policy->window(d->policy_state);
    g_autofree PpHostView *hv = g_new0(PpHostView, d->hosts->len + 1);
    g_autofree PpVmView *vv = g_new0(PpVmView, d->vms->len + 1);
    PpPlan *plan = pp_plan_new();
    guint nv = 0, n;
    double avg, step = 0;
    guint nhist = d->policy->history ?
                  d->policy->history(d->policy_state, &step) : 0;
    g_autofree float *hist = g_new0(float, (gsize)nhist * d->vms->len + 1);

    guint nh = 0;
    for (guint i = 0; i < d->hosts->len; i++) {
        Host *h = d->hosts->pdata[i];
        if (h->power != HOST_ON) {
            /* suspended (or on the way): idle, and a policy may wake it */
            hv[nh] = (PpHostView) { .name = h->name, .ncpus = MAX(h->ncpus, 1),
                                    .mem_mib = h->mem_mib, .cpu = 0,
                                    .power = h->watts, .off = true,
                                    .bandwidth = d->cfg->link_bytes / 1048576 };
            nh++;
            continue;
        }
        if (!h->up) {
            continue; /* unreachable: nothing is known, nothing can move */
        }
        hv[nh].name = h->name;
        hv[nh].ncpus = MAX(h->ncpus, 1);
        hv[nh].mem_mib = h->mem_mib;
        hv[nh].power = h->watts;
        hv[nh].bandwidth = d->cfg->link_bytes / 1048576; /* MiB/s */
        /* No sample in the window is not 0 %: the policy is told it does
         * not know (NAN) rather than that the host is idle. */
        hv[nh].cpu = pp_store_host_avg(d->store, h->name, now - window,
                                       now, &avg, &n, NULL) && n > 0 ?
                     avg : NAN;
        nh++;
    }
    for (guint i = 0; i < d->vms->len; i++) {
        Vm *vm = d->vms->pdata[i];
        if (vm->state == VM_LOST || vm->state == VM_BROKEN ||
            !vm->host->up) {
            continue; /* nothing to place: an operator has to look */
        }
        vv[nv].name = vm->name;
        vv[nv].host = vm->host->name;
        vv[nv].mem_mib = vm->mem_mib;
        vv[nv].cpu = pp_store_vm_avg(d->store, vm->name, now - window,
                                     now, &avg, &n, NULL) && n > 0 ?
                     avg : NAN;
        vv[nv].migrating = vm->state == VM_MIGRATING;
        vv[nv].fixed = pp_config_no_relocate(d->cfg, vm->name);
        vv[nv].migrating_to = vv[nv].migrating && vm->job && vm->job->to ?
                              vm->job->to->name : NULL;
        vv[nv].vcpus = vm->vcpus;
        vv[nv].vcpu_mips = 100;     /* a vCPU can use one core */
        vv[nv].dirty_rate = NAN;
        if (nhist) {
            g_autoptr(GError) err = NULL;
            float *h = hist + (gsize)nv * nhist;
            int len = pp_store_vm_history(d->store, vm->name, now, step,
                                          nhist, h, &err);
            if (len < 0) {
                pp_plan_note(plan, true, "no history of VM %s: %s",
                             vm->name, err->message);
            }
            vv[nv].history = h;
            vv[nv].nhistory = len > 0 ? len : 0;
        }
        nv++;
    }
    PpClusterView view = {
        .now = now, .last_relocation = d->last_relocation,
        .history_step = step, .hosts = hv, .nhosts = nh, .vms = vv, .nvms = nv,
    };
    d->policy->decide(d->policy_state, &view, plan);
    return plan;
}

static gboolean on_decide(gpointer opaque)
{
    PpDaemon *d = opaque;
    g_autoptr(PpPlan) plan = NULL;

    if (!d->cfg->autopilot) {
        return G_SOURCE_CONTINUE;
    }
    /* Decide only on a full window of samples (or after decide_after). */
    double after = d->cfg->decide_after >= 0 ? d->cfg->decide_after :
                   d->policy->window(d->policy_state);
    if (pp_wall_now() - d->started < after) {
        return G_SOURCE_CONTINUE;
    }
    plan = pp_daemon_plan(d);
    if (plan->warning) {
        g_autoptr(GString) s = g_string_new(NULL);
        for (guint i = 0; i < plan->notes->len; i++) {
            g_string_append_printf(s, "%s%s", i ? "; " : "",
                                   (char *)plan->notes->pdata[i]);
        }
        if (g_strcmp0(s->str, d->last_plan_text) != 0) {
            pp_daemon_event(d, "warning", NULL, "%s", s->str);
            g_free(d->last_plan_text);
            d->last_plan_text = g_string_free(g_steal_pointer(&s), FALSE);
        }
    }
    for (guint i = 0; i < plan->power->len; i++) {
        PpPowerAction *a = plan->power->pdata[i];
        Host *h = pp_daemon_host(d, a->host);
        g_autoptr(GError) err = NULL;
        /* a suspend waits until the host is empty: the policy asks again
         * every round, so "not now" is no news; what can never be done
         * (no power command) is said once per host */
        if (!h || (a->on ? h->power == HOST_ON || h->power == HOST_WAKING :
                   h->power != HOST_ON)) {
            continue;
        }
        /* hysteresis: a host woken for a move stays on min_awake s even
         * if the next rounds no longer want it (the detector wavers near
         * its threshold); waking and suspending cost more than idling */
        if (!a->on && h->woken &&
            pp_wall_now() - h->power_since < h->min_awake) {
            if (!h->hold_said) {
                h->hold_said = true;
                pp_daemon_event(d, "power", NULL, "%s stays on for %.0f s "
                                "more (min_awake) although the plan says "
                                "%s", h->name, h->min_awake -
                                (pp_wall_now() - h->power_since), a->reason);
            }
            continue;
        }
        bool ok = a->on ? pp_host_power_on(d, h, a->reason, &err) :
                  pp_host_power_off(d, h, a->reason, &err);
        if (!ok && !g_error_matches(err, PP_ERROR, PP_ERROR_BUSY) &&
            !h->power_warned) {
            h->power_warned = true;
            pp_daemon_event(d, "warning", NULL, "the plan's power action "
                            "cannot be done: %s", err->message);
        }
    }
    for (guint i = 0; i < plan->moves->len; i++) {
        PpMove *m = plan->moves->pdata[i];
        g_autoptr(GError) err = NULL;
        Vm *vm = pp_daemon_vm(d, m->vm);
        Host *to = pp_daemon_host(d, m->to);

        if (to && to->power != HOST_ON) {
            continue;   /* it wakes (the plan's power action): next round */
        }

        if (pp_daemon_active_jobs(d) >= d->cfg->max_moves) {
            break;
        }
        /* the policy may choose the method; the configured mode says
         * how (a post-copy kind stays as configured) */
        PpMigMode mode = d->cfg->mode;
        if (m->method == PP_METHOD_PRECOPY) {
            mode.kind = PP_MIG_PRECOPY;
        } else if (m->method == PP_METHOD_POSTCOPY &&
                   mode.kind == PP_MIG_PRECOPY) {
            mode.kind = PP_MIG_POSTCOPY;
        }
        if (!job_start(d, vm, to, &mode, m->reason, &err)) {
            pp_daemon_event(d, "warning", m->vm, "cannot move: %s",
                            err->message);
        }
    }
    return G_SOURCE_CONTINUE;
}

/* ---- life cycle ---- */

static gboolean on_signal(gpointer opaque)
{
    PpDaemon *d = opaque;

    pp_daemon_event(d, "stop", NULL, "signal received, stopping; the VMs "
                    "keep running");
    g_main_loop_quit(d->loop);
    return G_SOURCE_CONTINUE;
}

static gboolean on_sample(gpointer opaque);
static gboolean on_decide(gpointer opaque);

/*
 * SIGHUP: read the configuration file again and take what can change
 * without a restart (pp_config_reloadable); anything else, or a file
 * with an error, changes nothing and says why.
 */
static gboolean on_reload(gpointer opaque)
{
    PpDaemon *d = opaque;
    g_autoptr(GError) err = NULL;
    PpConfig *n = pp_config_load(d->cfg->path, &err);
    const PpPolicyOps *ops = NULL;
    void *st = NULL;

    if (n && pp_config_reloadable(d->cfg, n, &err) &&
        (ops = pp_policy_find(n->policy_name, &err))) {
        st = pp_policy_create(ops, n->kf, "policy", NULL, &err);
    }
    if (!st) {
        pp_daemon_event(d, "warning", NULL, "reload refused, the running "
                        "configuration stays: %s", err->message);
        pp_config_free(n);
        return G_SOURCE_CONTINUE;
    }
    double sample = d->cfg->sample_interval, decide = d->cfg->decide_interval;

    pp_config_take_reloadable(d->cfg, n);
    pp_config_free(n);
    d->policy->destroy(d->policy_state);
    d->policy = ops;
    d->policy_state = st;
    if (sample != d->cfg->sample_interval) {
        g_source_remove(d->sample_source);
        d->sample_source = g_timeout_add(
            (guint)(d->cfg->sample_interval * 1000), on_sample, d);
    }
    if (decide != d->cfg->decide_interval) {
        g_source_remove(d->decide_source);
        d->decide_source = g_timeout_add(
            (guint)(d->cfg->decide_interval * 1000), on_decide, d);
    }
    g_autofree char *mode = pp_mig_mode_str(&d->cfg->mode);
    pp_daemon_event(d, "reload", NULL, "configuration reloaded from %s: "
                    "policy %s, %s moves, autopilot %s", d->cfg->path,
                    d->cfg->policy_name, mode,
                    d->cfg->autopilot ? "on" : "off");
    return G_SOURCE_CONTINUE;
}

static void vm_free(Vm *vm)
{
    json_object_put(vm->hot_set);
    g_free(vm->name);
    g_free(vm);
}

static void host_free(Host *h)
{
    pp_host_power_release(h);
    g_free(h->name);
    g_free(h->where);
    g_free(h->addr);
    g_free(h->power_off_cmd);
    g_free(h->power_on_cmd);
    g_free(h);
}

static void daemon_free(PpDaemon *d)
{
    if (d->sample_source) {
        g_source_remove(d->sample_source);
    }
    if (d->decide_source) {
        g_source_remove(d->decide_source);
    }
    if (d->prune_source) {
        g_source_remove(d->prune_source);
    }
    pp_control_close(d);
    pp_metrics_close(d);
    /* The driver lets go of VMs and jobs first: no callback may run into
     * a freed job. */
    if (d->drv) {
        d->drv->ops->close(d->drv, d->stop_vms);
        d->drv = NULL;
    }
    if (d->jobs) {
        g_ptr_array_free(d->jobs, TRUE);
    }
    if (d->vms) {
        g_ptr_array_free(d->vms, TRUE);
    }
    if (d->hosts) {
        g_ptr_array_free(d->hosts, TRUE);
    }
    if (d->policy_state) {
        d->policy->destroy(d->policy_state);
    }
    if (d->stale_jobs) {
        g_ptr_array_unref(d->stale_jobs);
    }
    pp_store_close(d->store);
    if (d->lock_fd >= 0) {
        close(d->lock_fd);
    }
    if (d->loop) {
        g_main_loop_unref(d->loop);
    }
    pp_config_free(d->cfg);
    g_free(d->run_dir);
    g_free(d->last_plan_text);
    g_free(d);
}

/* One daemon per state directory: it owns the database, the socket and,
 * with the local driver, the VMs' run directories. */
static bool lock_instance(PpDaemon *d, GError **errp)
{
    g_autofree char *path = g_build_filename(d->cfg->state_dir, "lock", NULL);

    d->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (d->lock_fd < 0) {
        g_set_error(errp, PP_ERROR, PP_ERROR_IO, "cannot open '%s': %s",
                    path, g_strerror(errno));
        return false;
    }
    if (flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    errno == EWOULDBLOCK ?
                    "another consolidator runs on state directory '%s'" :
                    "cannot lock state directory '%s': %s",
                    d->cfg->state_dir, g_strerror(errno));
        return false;
    }
    return true;
}

static bool daemon_setup(PpDaemon *d, const char *config_path, GError **errp)
{
    static const char *const final[] = { "done", "failed", "cancelled",
                                         "broken", "abandoned", NULL };
    const PpDriverOps *drv;

    d->cfg = pp_config_load(config_path, errp);
    if (!d->cfg) {
        return false;
    }
    d->policy = pp_policy_find(d->cfg->policy_name, errp);
    if (!d->policy) {
        return false;
    }
    d->policy_state = pp_policy_create(d->policy, d->cfg->kf, "policy", NULL,
                                         errp);
    if (!d->policy_state) {
        return false;
    }
    drv = pp_driver_find(d->cfg->driver, errp);
    if (!drv) {
        return false;
    }
    if (g_mkdir_with_parents(d->cfg->state_dir, 0700) < 0) {
        g_set_error(errp, PP_ERROR, PP_ERROR_IO,
                    "cannot create state directory '%s': %s",
                    d->cfg->state_dir, g_strerror(errno));
        return false;
    }
    if (!lock_instance(d, errp)) {
        return false;
    }
    d->store = pp_store_open(d->cfg->database, errp);
    if (!d->store) {
        return false;
    }
    /* Moves a previous run left unfinished: the driver finds out from the
     * hosts what became of them. */
    d->stale_jobs = pp_store_jobs(d->store, final, errp);
    if (!d->stale_jobs) {
        return false;
    }
    d->run_dir = g_build_filename(d->cfg->state_dir, "run", NULL);
    for (guint i = 0; i < d->cfg->hosts->len; i++) {
        const PpHostConfig *hc = d->cfg->hosts->pdata[i];
        Host *h = g_new0(Host, 1);

        h->d = d;
        h->name = g_strdup(hc->name);
        h->where = g_strdup(hc->uri ? hc->uri : hc->cpus);
        h->power = HOST_ON;
        h->power_since = pp_wall_now();
        h->power_off_cmd = g_strdup(hc->power_off);
        h->power_on_cmd = g_strdup(hc->power_on);
        h->wake_delay = hc->wake_delay;
        h->min_awake = hc->min_awake;
        h->watts = hc->has_power ? &hc->power : NULL;
        h->up = true;
        h->mem_used_mib = h->mem_total_mib = NAN;
        h->ncpus = hc->ncpus;
        h->mem_mib = hc->mem_mib;
        g_ptr_array_add(d->hosts, h);
    }
    if (!drv->open(d, errp)) {
        return false;
    }
    /* What the driver did not settle concerns no VM it knows. */
    while (d->stale_jobs->len) {
        pp_daemon_end_stale_job(d, d->stale_jobs->pdata[0], "abandoned",
                                "the driver knows no such VM any more");
    }
    return pp_control_listen(d, errp) && pp_metrics_listen(d, errp);
}

/*
 * --daemon: fork before anything is set up; the parent waits on a pipe
 * until the child says it is ready ("ok") or why it could not start, so
 * a failing start is reported on the terminal with exit status 1.
 * Returns -1 in the child (carry on), else the parent's exit status.
 */
static int daemonize_start(int *ready_fd)
{
    int p[2];
    pid_t pid;

    if (pipe2(p, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
        fprintf(stderr, "consolidator: cannot daemonize: %s\n",
                g_strerror(errno));
        return 1;
    }
    if (pid > 0) {
        GString *msg = g_string_new(NULL);
        char buf[512];
        ssize_t n;

        close(p[1]);
        while ((n = read(p[0], buf, sizeof(buf))) > 0 ||
               (n < 0 && errno == EINTR)) {
            if (n > 0) {
                g_string_append_len(msg, buf, n);
            }
        }
        close(p[0]);
        if (strcmp(msg->str, "ok") == 0) {
            g_string_free(msg, TRUE);
            return 0;
        }
        fprintf(stderr, "consolidator: %s\n", msg->len ? msg->str :
                "the daemon exited while starting");
        g_string_free(msg, TRUE);
        return 1;
    }
    close(p[0]);
    *ready_fd = p[1];
    setsid();
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        close(null);
    }
    if (chdir("/") < 0) {
        /* harmless: every path was made absolute before */
    }
    return -1;
}

/* Tell the waiting parent how the start went, then leave the terminal. */
static void daemonize_done(int ready_fd, const char *error)
{
    const char *m = error ? error : "ok";

    if (ready_fd < 0) {
        return;
    }
    if (write(ready_fd, m, strlen(m)) < 0) {
        /* the parent is gone: nobody to tell */
    }
    close(ready_fd);
    if (!error) {
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null >= 0) {
            dup2(null, STDOUT_FILENO);
            dup2(null, STDERR_FILENO);
            close(null);
        }
    }
}

int pp_daemon_run(const char *config_arg, bool daemonize)
{
    /* Absolute before --daemon leaves the directory, and for SIGHUP. */
    g_autofree char *config_path = g_canonicalize_filename(config_arg, NULL);
    int ready_fd = -1;

    /* A peer that went away is an error return, never a signal; a HUP
     * before the reload handler is in place is not a reason to die; the
     * database and every file the daemon makes are its own. */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    umask(0077);

    if (daemonize) {
        int rc = daemonize_start(&ready_fd);
        if (rc >= 0) {
            return rc;
        }
    }

    PpDaemon *d = g_new0(PpDaemon, 1);
    g_autoptr(GError) err = NULL;

    d->hosts = g_ptr_array_new_with_free_func((GDestroyNotify)host_free);
    d->vms = g_ptr_array_new_with_free_func((GDestroyNotify)vm_free);
    d->jobs = g_ptr_array_new_with_free_func((GDestroyNotify)job_free);
    d->last_relocation = -INFINITY;
    d->listen_fd = -1;
    d->query_fd = -1;
    d->lock_fd = -1;
    d->loop = g_main_loop_new(NULL, FALSE);

    if (!daemon_setup(d, config_path, &err)) {
        if (ready_fd < 0) {
            fprintf(stderr, "consolidator: %s\n", err->message);
        }
        daemonize_done(ready_fd, err->message);
        daemon_free(d);
        return 1;
    }
    d->started = pp_wall_now();
    g_autofree char *mode = pp_mig_mode_str(&d->cfg->mode);
    pp_daemon_event(d, "start", NULL, "driver %s, %u hosts, %u VMs, policy "
                    "%s, %s moves%s, control socket %s", d->drv->ops->name,
                    d->hosts->len, d->vms->len, d->cfg->policy_name, mode,
                    d->cfg->autopilot ? "" : " (autopilot off)",
                    d->cfg->socket);
    d->sample_source = g_timeout_add((guint)(d->cfg->sample_interval * 1000),
                                     on_sample, d);
    d->decide_source = g_timeout_add((guint)(d->cfg->decide_interval * 1000),
                                     on_decide, d);
    d->prune_source = g_timeout_add_seconds(60, on_prune, d);
    g_unix_signal_add(SIGINT, on_signal, d);
    g_unix_signal_add(SIGTERM, on_signal, d);
    g_unix_signal_add(SIGHUP, on_reload, d);
    daemonize_done(ready_fd, NULL);
    on_sample(d);
    g_main_loop_run(d->loop);
    int rc = d->exit_code;
    daemon_free(d);
    return rc;
}
