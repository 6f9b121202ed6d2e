/*
 * The local driver: emulated hosts on this machine.
 *
 * Each [host NAME] is a CPU set of this machine with its own network
 * namespace (scripts/pp-net: veth links through a bridge namespace,
 * shaped with tc tbf at link_rate); each [vm NAME] is a QEMU process of
 * our build that the driver starts inside its host's namespace, pinned to
 * its CPUs.  Samples come from /proc: host CPU from /proc/stat over the
 * host's CPU set, VM CPU from the schedstat of its vCPU threads (thread
 * ids from query-cpus-fast).  A migration is driven over both QEMUs' QMP
 * monitors: a destination started with -incoming defer on the target
 * host, capabilities and parameters on both sides, migrate-incoming on
 * port 0, migrate; MIGRATION events with query-migrate polled every
 * 250 ms as a safety net and for the byte counts.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "daemon.h"
#include "guestlog.h"
#include "launcher.h"
#include "migqmp.h"
#include "ppjson.h"
#include "pp-error.h"
#include "procstat.h"
#include "qmp.h"

#include <errno.h>
#include <sys/stat.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifndef PP_NET_HELPER
#define PP_NET_HELPER "/usr/local/libexec/postpack/pp-net"
#endif

#define QMP_MS 5000
#define POLL_MS 250

extern const PpDriverOps pp_driver_local;

typedef struct LocalDriver {
    PpDriver parent;
    PpDaemon *d;
    char *net_helper;
    bool net_up;
    GPtrArray *stopping;    /* Stopping *: QEMUs asked to exit, not yet
                             * gone (never waited for on the loop) */
} LocalDriver;

/* A QEMU being stopped in the background: SIGTERM, SIGKILL after
 * STOP_GRACE_MS, freed once gone. */
typedef struct Stopping {
    LocalDriver *ld;
    PpVm *proc;
    gint64 kill_at_us, give_up_us;
    guint source;
} Stopping;

typedef struct LocalHost {
    const PpHostConfig *cfg;
    cpu_set_t set;
    cpu_set_t work_set;     /* host_work_cpus: QEMU's non-vCPU threads */
    bool split;             /* work_set differs from set */
    char *netns;
    bool have_last;
    guint64 last_busy, last_total;
} LocalHost;

typedef struct LocalVm {
    const PpVmSpec *spec;
    PpVm *proc;
    PpQmp *qmp;
    GPtrArray *extra;       /* PpVm *: more QEMUs of this VM a previous run
                             * left that could not be told apart (kept for
                             * the operator, never resumed) */
    GArray *vcpu_tids;      /* pid_t of proc's vCPU threads */
    GHashTable *last_ns;    /* "pid/tid" -> guint64 run time, for deltas */
    gint64 last_sample_us;
    char *last_protocol_error;  /* said once until the message changes */
    /* Monitor connections re-opened after a break while QEMU lived (a
     * peer that keeps breaking them is not reconnected forever). */
    gint64 reconnect_window_us;
    guint reconnects;
    guint retry_source;         /* retrying an unreachable monitor, or
                                 * watching a QEMU whose monitor closed
                                 * exit (exit_grace_ticks) */
    guint exit_grace_ticks;
    char *exit_grace_why;
    bool place_warned;          /* a thread could not be placed (said
                                 * once) */
    bool needs_cont;            /* paused by a converged pre-copy whose
                                 * destination is gone: resume it once its
                                 * monitor answers again */
} LocalVm;

typedef struct LocalJob {
    PpVm *dst_proc;
    PpQmp *dst_qmp;
    GArray *dst_vcpu_tids;
    int setup_pending;
    bool setup_failed;
    bool src_completed, dst_completed;
    bool src_poll_pending, dst_poll_pending;
    guint poll_source;
    int finish_pending;     /* last queries before retiring the source */
    /* The last migration status seen of each side (events and polls
     * report the same one; only a change is acted on). */
    char *src_status, *dst_status;
    /* The source QEMU died before the switch: the destination's own
     * status says whether it has the whole guest (completed) or not. */
    bool src_gone;
    guint gone_source;      /* deadline for the destination to complete */
    /* Asynchronous start of the destination: its QEMU boots (boot_source
     * polls for its monitor), then the QMP handshake runs (dst_ready
     * false until it is done). */
    guint boot_source;
    gint64 boot_deadline_us;
    bool dst_ready;
    /* An abort waits for the destination to be gone (kill_source) before
     * it resumes the source. */
    guint kill_source;
    gint64 kill_deadline_us;
    bool resume_source;
} LocalJob;

static LocalHost *LH(const Host *h) { return h->priv; }
static LocalVm *LV(const Vm *vm) { return vm->priv; }
static LocalJob *LJ(const Job *job) { return job->priv; }

/*
 * A QMP reply can arrive after the job ended and its LocalJob was freed
 * (job_release): every reply callback starts here and gives up on NULL.
 */
static LocalJob *lj_of(const Job *job)
{
    return job_is_active(job) ? job->priv : NULL;
}

/*
 * QEMU @side (of @vm) sent a reply or event that breaks the protocol (a
 * null or wrongly typed member, see ppjson.h): the value is not acted on,
 * and the operator hears of it once per distinct message.
 */
static void qmp_protocol_error(Vm *vm, const char *side, const GError *err)
{
    LocalVm *lv = LV(vm);
    g_autofree char *msg = g_strdup_printf("%s QEMU: %s", side, err->message);

    if (g_strcmp0(lv->last_protocol_error, msg) == 0) {
        return;
    }
    g_free(lv->last_protocol_error);
    lv->last_protocol_error = g_strdup(msg);
    pp_daemon_event(vm->d, "protocol-error", vm->name,
                    "%s (ignored; nothing is decided from it)", msg);
}

/* ---- network ---- */

static bool run_net_helper(LocalDriver *ld, const char *const *args,
                           char **out, GError **errp)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autofree char *err_text = NULL;
    int status;

    g_ptr_array_add(argv, ld->net_helper);
    for (const char *const *a = args; *a; a++) {
        g_ptr_array_add(argv, (char *)*a);
    }
    g_ptr_array_add(argv, NULL);
    if (!g_spawn_sync(NULL, (char **)argv->pdata, NULL, G_SPAWN_DEFAULT,
                      NULL, NULL, out, &err_text, &status, errp)) {
        return false;
    }
    if (!g_spawn_check_wait_status(status, NULL)) {
        g_set_error(errp, PP_ERROR, PP_ERROR_FAILED, "%s %s failed: %s",
                    ld->net_helper, args[0], g_strstrip(err_text));
        return false;
    }
    return true;
}

static bool net_up(LocalDriver *ld, GError **errp)
{
    PpDaemon *d = ld->d;
    g_autoptr(GPtrArray) args = g_ptr_array_new();

    /* "ensure" keeps a network that is complete: the VMs of a previous
     * run may be in the middle of a migration across it. */
    g_ptr_array_add(args, "ensure");
    g_ptr_array_add(args, d->cfg->instance);
    g_ptr_array_add(args, d->cfg->link_rate);
    for (guint i = 0; i < d->hosts->len; i++) {
        g_ptr_array_add(args, ((Host *)d->hosts->pdata[i])->name);
    }
    g_ptr_array_add(args, NULL);
    if (!run_net_helper(ld, (const char *const *)args->pdata, NULL, errp)) {
        return false;
    }
    ld->net_up = true;
    if (d->cfg->guest_net) {
        /* the guest LAN beside it (kept as it is when complete) */
        args->pdata[0] = "guestnet";
        if (!run_net_helper(ld, (const char *const *)args->pdata, NULL,
                            errp)) {
            return false;
        }
    }
    for (guint i = 0; i < d->hosts->len; i++) {
        Host *h = d->hosts->pdata[i];
        const char *a[] = { "addr", d->cfg->instance, h->name, NULL };
        g_autofree char *out = NULL;
        if (!run_net_helper(ld, a, &out, errp)) {
            return false;
        }
        h->addr = g_strdup(g_strstrip(out));
        LH(h)->netns = g_strdup_printf("pp-%s-%s", d->cfg->instance, h->name);
    }
    return true;
}

static void net_down(LocalDriver *ld)
{
    const char *a[] = { "down", ld->d->cfg->instance, NULL };
    g_autoptr(GError) err = NULL;

    if (!run_net_helper(ld, a, NULL, &err)) {
        fprintf(stderr, "warning: %s\n", err->message);
    }
}

/* ---- QEMU processes and their monitors ---- */

/* Start a QEMU for @vm on @host; with !@wait, without waiting for its
 * monitor (pp_vm_poll_ready() then says when it is up). */
static PpVm *spawn(LocalDriver *ld, Vm *vm, Host *host, bool incoming,
                   const char *tag, bool wait, GError **errp)
{
    PpDaemon *d = ld->d;
    const PpVmSpec *s = LV(vm)->spec;
    g_autofree char *append = pp_guest_cmdline(s->workload, s->fill_mib,
                                               s->address, errp);
    g_autofree char *run_dir = g_build_filename(d->run_dir, s->name, tag,
                                                NULL);
    g_autofree char *name = g_strdup_printf("%s-%s", s->name, tag);
    g_autofree char *tap = NULL;

    if (!append) {
        return NULL;
    }
    if (d->cfg->guest_net) {
        /* The VM's port on this host's guest bridge: one name per VM, in
         * every host's namespace (made once, reused when it comes back). */
        tap = g_strdup_printf("pv%08x", g_str_hash(s->name));
        const char *a[] = { "tap", d->cfg->instance, host->name, tap,
                            d->cfg->qemu_user, NULL };
        if (!run_net_helper(ld, a, NULL, errp)) {
            return NULL;
        }
    }
    PpVmConfig cfg = {
        .name = name,
        .qemu = d->cfg->qemu,
        .firmware_dirs = (const char *const *)d->cfg->firmware,
        .accel = d->cfg->accel,
        .mem_mib = (guint)s->mem_mib,
        .vcpus = s->vcpus,
        .kernel = d->cfg->kernel,
        .initrd = d->cfg->initrd,
        .append = append,
        .cpus = LH(host)->cfg->cpus,
        .netns = LH(host)->netns,
        .run_dir = run_dir,
        .incoming_defer = incoming,
        .sandbox = d->cfg->sandbox,
        .user = d->cfg->qemu_user,
        /* VMs outlive the daemon: a restart adopts them (pidfile). */
        .detach = true,
        .net_tap = tap,
        .net_mac = s->mac,
    };
    g_autofree char *host_file = g_build_filename(run_dir, "host", NULL);
    g_autoptr(PpVm) proc = wait ? pp_vm_start(&cfg, 30000, errp) :
                           pp_vm_spawn(&cfg, errp);

    if (!proc) {
        return NULL;
    }
    /* Which host it runs on, for the daemon that adopts it. */
    if (!g_file_set_contents(host_file, host->name, -1, NULL)) {
        g_set_error(errp, PP_ERROR, PP_ERROR_IO, "cannot write '%s'",
                    host_file);
        return NULL;
    }
    return g_steal_pointer(&proc);
}

static void job_on_event(Job *job, PpQmp *from, const char *name,
                         json_object *data, gint64 time_us);
static void job_on_closed(Job *job, bool src, const char *why);

static void on_vm_event(PpQmp *q, const char *name, json_object *data,
                        gint64 time_us, gpointer opaque)
{
    Vm *vm = opaque;

    if (vm->job && vm->job->priv) {
        job_on_event(vm->job, q, name, data, time_us);
    }
    if (strcmp(name, "SHUTDOWN") == 0 && q == LV(vm)->qmp) {
        pp_daemon_event(vm->d, "vm-shutdown", vm->name, "guest shut down");
    }
}

#define RECONNECT_MS 2000
#define RECONNECTS_PER_MINUTE 3

static void query_vcpus(PpQmp *qmp, GArray *tids);
static void on_schema(PpQmp *q, json_object *ret, const GError *err,
                      gpointer opaque);
static void on_vm_closed(PpQmp *q, const GError *why, gpointer opaque);
static void on_reconnected(PpQmp *q, const GError *err, gpointer opaque);

/* Which of a VM's monitor connections @q is. */
typedef enum Side { SIDE_NONE, SIDE_VM, SIDE_SRC, SIDE_DST } Side;

static Side side_of(Vm *vm, PpQmp *q, Job **job_out)
{
    Job *job = vm->job && vm->job->priv ? vm->job : NULL;

    *job_out = job;
    if (job && q == LJ(job)->dst_qmp) {
        return SIDE_DST;
    }
    if (q && q == LV(vm)->qmp) {
        return job ? SIDE_SRC : SIDE_VM;
    }
    return SIDE_NONE;
}

static const char *side_name(Side side)
{
    return side == SIDE_DST ? "destination" : side == SIDE_SRC ? "source" :
           "the";
}

/*
 * A monitor connection of @vm to @proc broke: when that QEMU still runs,
 * open a new one (QEMU's monitor takes the next client), without waiting:
 * the handshake runs on the loop and on_reconnected() says how it went.
 * Bounded: no more than RECONNECTS_PER_MINUTE per VM, so a QEMU that
 * keeps breaking the protocol is not reconnected in a loop.  NULL when
 * the QEMU is gone or the limit is reached.
 */
static PpQmp *reconnect(Vm *vm, PpVm *proc, Side side)
{
    LocalVm *lv = LV(vm);
    gint64 now = g_get_monotonic_time();
    g_autoptr(GError) err = NULL;
    PpQmp *q;

    if (!proc || !pp_vm_is_running(proc)) {
        return NULL;
    }
    if (now - lv->reconnect_window_us > 60 * G_USEC_PER_SEC) {
        lv->reconnect_window_us = now;
        lv->reconnects = 0;
    }
    if (lv->reconnects >= RECONNECTS_PER_MINUTE) {
        pp_daemon_event(vm->d, "warning", vm->name, "%s QEMU (pid %d) still "
                        "runs but its monitor broke %u times within a "
                        "minute: not reconnected now", side_name(side),
                        (int)pp_vm_pid(proc), lv->reconnects);
        return NULL;
    }
    lv->reconnects++;
    q = pp_qmp_connect_async(pp_vm_qmp_path(proc), NULL, RECONNECT_MS,
                             on_vm_event, on_vm_closed, on_reconnected, vm,
                             &err);
    if (!q) {
        pp_daemon_event(vm->d, "warning", vm->name, "%s QEMU (pid %d) still "
                        "runs but its monitor cannot be reached: %s",
                        side_name(side), (int)pp_vm_pid(proc), err->message);
    }
    return q;
}

static gboolean on_retry_monitor(gpointer opaque);

/*
 * A VM's QEMU whose monitor cannot be reached while the process runs is
 * not lost: the guest runs, its memory is taken.  It stays where it is,
 * samples stop (the policy then waits, see pp_daemon_plan), and the
 * monitor is tried again every 10 s until it answers or QEMU exits.
 */
static void monitor_unreachable(Vm *vm, const char *why)
{
    LocalVm *lv = LV(vm);

    pp_daemon_event(vm->d, "alert", vm->name, "QEMU (pid %d) runs but its "
                    "monitor cannot be reached (%s): left alone, retried "
                    "every 10 s", (int)pp_vm_pid(lv->proc), why);
    if (!lv->retry_source) {
        lv->retry_source = g_timeout_add_seconds(10, on_retry_monitor, vm);
    }
}

static gboolean on_retry_monitor(gpointer opaque)
{
    Vm *vm = opaque;
    LocalVm *lv = LV(vm);
    PpQmp *q;

    if (!pp_vm_is_running(lv->proc)) {
        lv->retry_source = 0;
        pp_daemon_vm_lost(vm->d, vm, "QEMU exited while its monitor was "
                          "unreachable");
        return G_SOURCE_REMOVE;
    }
    if (lv->qmp && pp_qmp_is_connected(lv->qmp)) {
        return G_SOURCE_CONTINUE; /* a reconnect is under way */
    }
    lv->reconnects = 0;
    q = reconnect(vm, lv->proc, SIDE_VM);
    if (q) {
        pp_qmp_free(lv->qmp);
        lv->qmp = q;
    }
    return G_SOURCE_CONTINUE; /* on_reconnected() stops it */
}

#define EXIT_GRACE_TICK_MS 50
#define EXIT_GRACE_TICKS 60     /* 3 s */

static gboolean on_exit_grace(gpointer opaque)
{
    Vm *vm = opaque;
    LocalVm *lv = LV(vm);
    g_autofree char *why = NULL;

    if (lv->proc && pp_vm_is_running(lv->proc) &&
        ++lv->exit_grace_ticks < EXIT_GRACE_TICKS) {
        return G_SOURCE_CONTINUE;
    }
    lv->retry_source = 0;
    why = g_steal_pointer(&lv->exit_grace_why);
    if (lv->proc && pp_vm_is_running(lv->proc)) {
        monitor_unreachable(vm, why);
    } else {
        pp_daemon_vm_lost(vm->d, vm, why);
    }
    return G_SOURCE_REMOVE;
}

/* The monitor on @side is gone for good (no reconnect, or it failed). */
static void monitor_lost(Vm *vm, Job *job, Side side, const char *why)
{
    LocalVm *lv = LV(vm);
    g_autofree char *msg = NULL;

    if (side == SIDE_DST || side == SIDE_SRC) {
        job_on_closed(job, side == SIDE_SRC, why);
        return;
    }
    msg = g_strdup_printf("QEMU went away on %s: %s", vm->host->name, why);
    if (lv->proc && pp_vm_is_running(lv->proc)) {
        /*
         * A QEMU that was killed closes its sockets before it can be
         * reaped: watch it for a moment before calling it unreachable,
         * so that its end is told at once and not at the next retry.
         */
        if (!lv->retry_source) {
            g_free(lv->exit_grace_why);
            lv->exit_grace_why = g_steal_pointer(&msg);
            lv->exit_grace_ticks = 0;
            lv->retry_source = g_timeout_add(EXIT_GRACE_TICK_MS,
                                             on_exit_grace, vm);
        }
        return;
    }
    pp_daemon_vm_lost(vm->d, vm, msg);
}

static void on_reconnected(PpQmp *q, const GError *err, gpointer opaque)
{
    Vm *vm = opaque;
    LocalVm *lv = LV(vm);
    Job *job;
    Side side = side_of(vm, q, &job);

    if (side == SIDE_NONE) {
        return; /* replaced meanwhile: whoever did frees it */
    }
    if (err) {
        /* The dead connection stays in place (commands on it fail from
         * the loop); the job or VM decides what the loss means. */
        g_autofree char *why = g_strdup_printf(
            "its monitor broke and a new connection failed: %s",
            err->message);
        pp_daemon_event(vm->d, "warning", vm->name, "%s QEMU: %s",
                        side_name(side), why);
        monitor_lost(vm, job, side, why);
        return;
    }
    pp_daemon_event(vm->d, "monitor-reconnected", vm->name, "%s QEMU's "
                    "monitor answers on a new connection", side_name(side));
    if (side == SIDE_DST) {
        LJ(job)->dst_poll_pending = false;
        return;
    }
    if (lv->retry_source) {
        g_source_remove(lv->retry_source);
        lv->retry_source = 0;
    }
    if (side == SIDE_SRC) {
        LJ(job)->src_poll_pending = false;
        return;
    }
    query_vcpus(q, lv->vcpu_tids);
    pp_qmp_send(q, "query-qmp-schema", NULL, QMP_MS, on_schema, vm);
    if (lv->needs_cont) {
        /* the destination of the move that paused it is long gone */
        lv->needs_cont = false;
        pp_qmp_send(q, "cont", NULL, QMP_MS, NULL, NULL);
        pp_daemon_event(vm->d, "vm-resumed", vm->name, "resumed on %s after "
                        "its monitor came back", vm->host->name);
    }
}

static void on_vm_closed(PpQmp *q, const GError *why, gpointer opaque)
{
    Vm *vm = opaque;
    LocalVm *lv = LV(vm);
    Job *job;
    Side side = side_of(vm, q, &job);
    PpVm *proc = side == SIDE_DST ? LJ(job)->dst_proc : lv->proc;
    const char *msg = why ? why->message : "connection closed";
    PpQmp *n;

    if (side == SIDE_NONE) {
        return;
    }
    n = reconnect(vm, proc, side);
    if (n) {
        pp_daemon_event(vm->d, "warning", vm->name, "%s QEMU's monitor "
                        "connection broke (%s); QEMU still runs: "
                        "reconnecting", side_name(side), msg);
        if (side == SIDE_DST) {
            LJ(job)->dst_qmp = n;
        } else {
            lv->qmp = n;
        }
        pp_qmp_free(q);
        return;
    }
    monitor_lost(vm, job, side, msg);
}

static void on_vcpus(PpQmp *q, json_object *ret, const GError *err,
                     gpointer opaque)
{
    GArray *tids = opaque;
    g_autoptr(GArray) got = g_array_new(FALSE, FALSE, sizeof(pid_t));

    if (err || !pp_json_is(ret, json_type_array, "query-cpus-fast", NULL)) {
        g_array_unref(tids);
        return;
    }
    for (size_t i = 0; i < json_object_array_length(ret); i++) {
        gint64 t;

        if (!pp_json_get_int(json_object_array_get_idx(ret, i), "thread-id",
                             &t, NULL) || t <= 0 || t > G_MAXINT32) {
            /* a malformed list counts no thread rather than a wrong one */
            g_array_unref(tids);
            return;
        }
        pid_t tid = (pid_t)t;
        g_array_append_val(got, tid);
    }
    g_array_set_size(tids, 0);
    g_array_append_vals(tids, got->data, got->len);
    g_array_unref(tids);
}

static void query_vcpus(PpQmp *qmp, GArray *tids)
{
    pp_qmp_send(qmp, "query-cpus-fast", NULL, QMP_MS, on_vcpus,
                g_array_ref(tids));
}

static void on_schema(PpQmp *q, json_object *ret, const GError *err,
                      gpointer opaque)
{
    Vm *vm = opaque;

    if (!err) {
        vm->has_instant = pp_qmp_schema_has(ret, "x-postcopy-instant");
        vm->has_hot_first = pp_qmp_schema_has(ret,
                                                  "x-postcopy-hot-first");
    }
}

/* ---- sampling ---- */

/* Run time accumulated since the last sample by the threads of @proc
 * (all of them, or only @tids), remembered per thread in lv->last_ns. */
static guint64 delta_ns(LocalVm *lv, PpVm *proc, GArray *tids,
                        GHashTable *seen, const char *prefix)
{
    pid_t pid = proc ? pp_vm_pid(proc) : 0;
    guint64 sum = 0;

    if (!pid) {
        return 0;
    }
    g_autofree char *dir = g_strdup_printf("/proc/%d/task", (int)pid);
    g_autoptr(GDir) dh = tids ? NULL : g_dir_open(dir, 0, NULL);
    guint n = tids ? tids->len : G_MAXUINT;

    for (guint i = 0; i < n; i++) {
        pid_t tid;
        guint64 ns;
        if (tids) {
            tid = g_array_index(tids, pid_t, i);
        } else {
            const char *name = dh ? g_dir_read_name(dh) : NULL;
            if (!name) {
                break;
            }
            tid = (pid_t)atoi(name);
        }
        if (!pp_thread_cpu_ns(pid, tid, &ns, NULL)) {
            continue;
        }
        char *key = g_strdup_printf("%s%d/%d", prefix, (int)pid, (int)tid);
        gpointer old = g_hash_table_lookup(lv->last_ns, key);
        if (old && ns >= *(guint64 *)old) {
            sum += ns - *(guint64 *)old;
        }
        guint64 *val = g_new(guint64, 1);
        *val = ns;
        g_hash_table_add(seen, g_strdup(key));
        g_hash_table_replace(lv->last_ns, key, val);
    }
    return sum;
}

/*
 * The paper's hosts ran VMs on one core and host work on another: on a
 * host with host_work_cpus, QEMU's vCPU threads stay on its cpus and
 * every other thread (main loop, migration, I/O, RCU) goes to the
 * host-work set.  Threads are told apart by exclusion (the vCPU thread
 * ids from query-cpus-fast), so no thread name is relied on.  Checked on
 * every sampling pass: threads QEMU starts later (a migration's) inherit
 * the main thread's set, and any other is placed within a second.
 * Nothing is done until the vCPU ids are known.
 */
static void place_threads(Vm *vm, PpVm *proc, GArray *vcpu_tids, Host *h)
{
    LocalHost *lh = h ? LH(h) : NULL;
    pid_t pid = proc ? pp_vm_pid(proc) : 0;
    const char *name;

    if (!lh || !lh->split || !pid || !vcpu_tids || !vcpu_tids->len) {
        return;
    }
    g_autofree char *dir = g_strdup_printf("/proc/%d/task", (int)pid);
    g_autoptr(GDir) dh = g_dir_open(dir, 0, NULL);

    while (dh && (name = g_dir_read_name(dh))) {
        pid_t tid = (pid_t)atoi(name);
        bool is_vcpu = false;
        cpu_set_t cur;

        for (guint i = 0; i < vcpu_tids->len; i++) {
            is_vcpu |= g_array_index(vcpu_tids, pid_t, i) == tid;
        }
        const cpu_set_t *want = is_vcpu ? &lh->set : &lh->work_set;
        if (sched_getaffinity(tid, sizeof(cur), &cur) == 0 &&
            CPU_EQUAL(&cur, want)) {
            continue;
        }
        if (sched_setaffinity(tid, sizeof(*want), want) < 0 &&
            errno != ESRCH && !LV(vm)->place_warned) {
            LV(vm)->place_warned = true;
            pp_daemon_event(vm->d, "warning", vm->name, "cannot place QEMU "
                            "thread %d on CPUs %s: %s", (int)tid,
                            is_vcpu ? lh->cfg->cpus : lh->cfg->host_work_cpus,
                            g_strerror(errno));
        }
    }
}

static void sample_vm(PpDaemon *d, Vm *vm, double t)
{
    LocalVm *lv = LV(vm);
    gint64 now = g_get_monotonic_time();
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash,
                                                       g_str_equal, g_free,
                                                       NULL);
    guint64 vcpu = 0, all = 0;

    if (vm->state == VM_LOST) {
        return;
    }
    place_threads(vm, lv->proc, lv->vcpu_tids, vm->host);
    if (vm->job && vm->job->priv && LJ(vm->job)->dst_proc) {
        place_threads(vm, LJ(vm->job)->dst_proc, LJ(vm->job)->dst_vcpu_tids,
                      vm->job->to);
    }
    /* During a move the guest runs on either side; count both. */
    vcpu = delta_ns(lv, lv->proc, lv->vcpu_tids, seen, "v");
    all = delta_ns(lv, lv->proc, NULL, seen, "p");
    if (vm->job && vm->job->priv && LJ(vm->job)->dst_proc) {
        LocalJob *lj = LJ(vm->job);
        vcpu += delta_ns(lv, lj->dst_proc, lj->dst_vcpu_tids, seen, "v");
        all += delta_ns(lv, lj->dst_proc, NULL, seen, "p");
    }
    /* Forget threads that are gone. */
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, lv->last_ns);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        if (!g_hash_table_contains(seen, key)) {
            g_hash_table_iter_remove(&it);
        }
    }
    if (lv->last_sample_us) {
        double dt_ns = (now - lv->last_sample_us) * 1000.0;
        PpVmStats st;

        pp_vm_stats_init(&st);
        st.cpu = CLAMP(100.0 * vcpu / dt_ns, 0, 100.0 * vm->vcpus);
        st.proc_cpu = 100.0 * all / dt_ns;
        pp_daemon_sample_vm(d, vm, t, &st);
    }
    lv->last_sample_us = now;
}

static void sample_host(PpDaemon *d, Host *h, double t)
{
    LocalHost *lh = LH(h);
    guint64 busy, total;
    g_autoptr(GError) err = NULL;

    if (!pp_cpustat_read(&lh->set, &busy, &total, &err)) {
        fprintf(stderr, "warning: %s\n", err->message);
        return;
    }
    if (lh->have_last) {
        pp_daemon_sample_host(d, h, t, pp_cpu_percent(lh->last_busy, busy,
                                                      lh->last_total, total,
                                                      1), NAN, NAN);
    }
    lh->have_last = true;
    lh->last_busy = busy;
    lh->last_total = total;
}

static void local_sample(PpDriver *drv, double t)
{
    PpDaemon *d = drv->d;

    for (guint i = 0; i < d->hosts->len; i++) {
        sample_host(d, d->hosts->pdata[i], t);
    }
    for (guint i = 0; i < d->vms->len; i++) {
        sample_vm(d, d->vms->pdata[i], t);
    }
}

/* ---- migration ---- */

/*
 * Before the switch: drop the destination, keep the guest on the source.
 * The destination goes first, and the source is resumed only once the
 * destination QEMU is gone: a destination whose RESUME was never read
 * (its monitor broke) may run the guest, and two running copies are
 * worse than a failed move.
 */
static void abort_resume(Job *job);

#define KILL_WAIT_S 5

/* Polled while the destination of an aborted move dies. */
static gboolean on_dst_killed_poll(gpointer opaque)
{
    Job *job = opaque;
    LocalJob *lj = LJ(job);

    if (pp_vm_is_running(lj->dst_proc) &&
        g_get_monotonic_time() < lj->kill_deadline_us) {
        return G_SOURCE_CONTINUE;
    }
    lj->kill_source = 0;
    abort_resume(job);
    return G_SOURCE_REMOVE;
}

static void abort_finish(Job *job, bool resume_source)
{
    LocalJob *lj = LJ(job);

    if (lj->poll_source) {
        g_source_remove(lj->poll_source);
        lj->poll_source = 0;
    }
    if (lj->boot_source) {
        g_source_remove(lj->boot_source);
        lj->boot_source = 0;
    }
    pp_qmp_free(lj->dst_qmp);
    lj->dst_qmp = NULL;
    lj->resume_source = resume_source;
    if (lj->dst_proc && pp_vm_is_running(lj->dst_proc)) {
        /* Nothing on it is worth a graceful stop. */
        kill(pp_vm_pid(lj->dst_proc), SIGKILL);
        lj->kill_deadline_us = g_get_monotonic_time() +
                               KILL_WAIT_S * G_USEC_PER_SEC;
        lj->kill_source = g_timeout_add(20, on_dst_killed_poll, job);
        return;
    }
    abort_resume(job);
}

/* The destination is gone (or will not die): decide about the source. */
static void abort_resume(Job *job)
{
    Vm *vm = job->vm;
    LocalVm *lv = LV(vm);
    LocalJob *lj = LJ(job);

    if (lj->dst_proc) {
        if (pp_vm_is_running(lj->dst_proc)) {
            /* survived SIGKILL: whether it runs the guest is unknown */
            pp_daemon_event(job->d, "alert", vm->name, "destination QEMU "
                            "(pid %d) does not die: the source is not "
                            "resumed", (int)pp_vm_pid(lj->dst_proc));
            pp_vm_forget(lj->dst_proc);
            lj->dst_proc = NULL;
            job_aborted(job, false);
            return;
        }
        pp_vm_free(lj->dst_proc);
        lj->dst_proc = NULL;
    }
    if (lj->src_gone || !lv->proc || !pp_vm_is_running(lv->proc)) {
        pp_daemon_vm_lost(job->d, vm, "the source QEMU died before the "
                          "destination had the whole guest");
        job_aborted(job, true);
        return;
    }
    if (lj->resume_source && lv->qmp && pp_qmp_is_connected(lv->qmp)) {
        if (!lj->src_completed) {
            pp_qmp_send(lv->qmp, "migrate_cancel", NULL, QMP_MS, NULL, NULL);
        }
        /* A failed or cancelled pre-copy resumes the source by itself; a
         * completed one left it paused for a destination that failed. */
        pp_qmp_send(lv->qmp, "cont", NULL, QMP_MS, NULL, NULL);
    }
    job_aborted(job, true);
    if (!lv->qmp || !pp_qmp_is_connected(lv->qmp)) {
        /* a converged pre-copy left it paused: resumed when it answers */
        lv->needs_cont = lj->resume_source && lj->src_completed;
        monitor_unreachable(vm, "its monitor broke during the move");
    }
}

static void on_abort_status(PpQmp *q, json_object *ret, const GError *err,
                            gpointer opaque)
{
    Job *job = opaque;
    const char *st = NULL;

    if (!lj_of(job)) {
        return;
    }
    /* Anything but a clear "running" (an error, a malformed reply) leaves
     * the source alone: the guest may have switched. */
    bool running = !err && pp_json_get_str(ret, "status", &st, NULL) &&
                   strcmp(st, "running") == 0;

    if (running) {
        abort_finish(job, false);
    } else {
        job_aborted(job, false);
    }
}

/*
 * Once the switch to post-copy was requested QEMU may have switched before
 * we read its postcopy-active event, so the source is asked first and never
 * resumed by us: if it still runs the guest the move simply failed;
 * otherwise it cannot go back.
 */
static void local_migrate_abort(PpDriver *drv, Job *job)
{
    LocalJob *lj = LJ(job);

    if (lj->poll_source) {
        g_source_remove(lj->poll_source);
        lj->poll_source = 0;
    }
    if (lj->src_gone) {
        abort_finish(job, false); /* the VM is lost: nothing to resume */
        return;
    }
    if (job->switch_requested) {
        pp_qmp_send(LV(job->vm)->qmp, "query-status", NULL, QMP_MS,
                    on_abort_status, job);
    } else {
        abort_finish(job, true);
    }
}

static void stop_later(LocalDriver *ld, PpVm *proc);

/* Both sides completed: the destination becomes the VM's process. */
static void handover(Job *job)
{
    LocalVm *lv = LV(job->vm);
    LocalJob *lj = LJ(job);
    PpVm *old_proc = lv->proc;
    PpQmp *old_qmp = lv->qmp;

    if (lj->poll_source) {
        g_source_remove(lj->poll_source);
        lj->poll_source = 0;
    }
    lv->proc = g_steal_pointer(&lj->dst_proc);
    lv->qmp = g_steal_pointer(&lj->dst_qmp);
    g_array_set_size(lv->vcpu_tids, 0);
    g_array_append_vals(lv->vcpu_tids, lj->dst_vcpu_tids->data,
                        lj->dst_vcpu_tids->len);
    /* The source is finished (postmigrate): retire it. */
    pp_qmp_free(old_qmp);
    stop_later((LocalDriver *)job->d->drv, old_proc);
    job_completed(job);
}

static void finish_step_done(Job *job)
{
    LocalJob *lj = lj_of(job);

    if (lj && --lj->finish_pending == 0 && !job->aborting) {
        handover(job);
    }
}

/* The source's hot set, kept for this VM's next move. */
static void on_final_hot_set(PpQmp *q, json_object *ret, const GError *err,
                             gpointer opaque)
{
    Job *job = opaque;

    if (!lj_of(job)) {
        return;
    }
    if (err) {
        /* Not worth failing a finished move: the next one tracks again. */
        pp_daemon_event(job->d, "warning", job->vm->name,
                        "x-query-hot-set: %s", err->message);
    } else {
        g_autoptr(GError) perr = NULL;

        if (pp_hot_set_check(ret, NULL, &perr)) {
            pp_hot_set_strip_faults(ret);
            json_object_put(job->vm->hot_set);
            job->vm->hot_set = json_object_get(ret);
        } else {
            /* never handed on: the next move tracks again */
            qmp_protocol_error(job->vm, "source", perr);
        }
    }
    finish_step_done(job);
}

/* The destination's fault counters. */
static void on_final_dst_info(PpQmp *q, json_object *ret, const GError *err,
                              gpointer opaque)
{
    Job *job = opaque;

    if (!lj_of(job)) {
        return;
    }
    g_autoptr(GError) perr = NULL;

    if (!err && !pp_postcopy_stats_update(&job->pc, ret, &perr)) {
        qmp_protocol_error(job->vm, "destination", perr);
    }
    finish_step_done(job);
}

static void maybe_finish(Job *job)
{
    LocalJob *lj = LJ(job);

    if (!lj->src_completed || !lj->dst_completed || lj->finish_pending > 0) {
        return;
    }
    if (!job_hot_first(job)) {
        handover(job);
        return;
    }
    /* Two last questions before the source is retired. */
    lj->finish_pending = 2;
    pp_qmp_send(LV(job->vm)->qmp, "x-query-hot-set", NULL, QMP_MS,
                on_final_hot_set, job);
    pp_qmp_send(lj->dst_qmp, "query-migrate", NULL, QMP_MS,
                on_final_dst_info, job);
}

static bool job_driving(const Job *job)
{
    return job_is_active(job) && !job->aborting && job->priv;
}

/* Is @status news for the side whose last status is *@last? */
static bool status_changed(char **last, const char *status)
{
    if (g_strcmp0(*last, status) == 0) {
        return false;
    }
    g_free(*last);
    *last = g_strdup(status);
    return true;
}

static void on_src_status(Job *job, const char *status)
{
    if (!job_driving(job) || !status ||
        !status_changed(&LJ(job)->src_status, status)) {
        return;
    }
    if (strcmp(status, "postcopy-active") == 0) {
        if (job->state == JOB_PAUSED) {
            job_recovered(job);
        } else {
            job_switched(job);
        }
    } else if (strcmp(status, "completed") == 0) {
        LJ(job)->src_completed = true;
        job_source_done(job);
        maybe_finish(job);
    } else if (strcmp(status, "postcopy-paused") == 0) {
        /* The channel went down after the switch; both sides wait. */
        job_paused(job, "source: post-copy paused");
    } else if (strcmp(status, "failed") == 0 ||
               strcmp(status, "cancelled") == 0) {
        g_autofree char *why = g_strdup_printf("source migration %s", status);
        job_failed(job, why);
    }
}

static void on_dst_status(Job *job, const char *status)
{
    if (!job_driving(job) || !status ||
        !status_changed(&LJ(job)->dst_status, status)) {
        return;
    }
    if (strcmp(status, "completed") == 0) {
        LJ(job)->dst_completed = true;
        if (LJ(job)->src_gone) {
            /* it could only complete with everything the source sent */
            LJ(job)->src_completed = true;
            job_source_done(job);
        }
        maybe_finish(job);
    } else if (strcmp(status, "postcopy-paused") == 0) {
        job_paused(job, "destination: post-copy paused");
    } else if (strcmp(status, "failed") == 0) {
        job_failed(job, "destination migration failed");
    }
}

static void job_on_event(Job *job, PpQmp *from, const char *name,
                         json_object *data, gint64 time_us)
{
    bool src = from == LV(job->vm)->qmp;

    if (strcmp(name, "MIGRATION") == 0) {
        g_autoptr(GError) perr = NULL;
        const char *st;

        if (!pp_json_get_str(data, "status", &st, &perr)) {
            qmp_protocol_error(job->vm, src ? "source" : "destination", perr);
        } else if (src) {
            on_src_status(job, st);
        } else {
            on_dst_status(job, st);
        }
    } else if (strcmp(name, "STOP") == 0 && src && job->t_stop == 0) {
        job->t_stop = time_us / 1e6;
    } else if (strcmp(name, "RESUME") == 0 && !src) {
        /* The destination runs the guest: from here on, no way back. */
        job->t_resume = time_us / 1e6;
        job_switched(job);
    }
}

/* How long a destination may take to complete after its source died. */
#define SRC_GONE_S 30

static gboolean on_src_gone_timeout(gpointer opaque)
{
    Job *job = opaque;

    LJ(job)->gone_source = 0;
    job_failed(job, "the source QEMU died and the destination did not "
               "complete the migration");
    return G_SOURCE_REMOVE;
}

static void job_on_closed(Job *job, bool src, const char *why)
{
    LocalJob *lj = LJ(job);
    g_autofree char *msg = g_strdup_printf(
        "%s QEMU went away: %s", src ? "source" : "destination", why);

    if (src && job_driving(job) && lj->src_completed && lj->dst_completed) {
        /* The source went away during the last queries: the guest is
         * whole on the destination, so the move is done regardless. */
        handover(job);
        return;
    }
    if (src && !lj->src_gone && job->state != JOB_STARTING &&
        (!job->switched || lj->src_completed) &&
        !pp_vm_is_running(LV(job->vm)->proc)) {
        /* The source died before the switch, or after it had sent
         * everything.  Whether the guest is lost is the destination's to
         * say: after a converged pre-copy it has everything and
         * completes; otherwise its migration fails. */
        lj->src_gone = true;
        lj->gone_source = g_timeout_add_seconds(SRC_GONE_S, on_src_gone_timeout,
                                                job);
        pp_daemon_event(job->d, "warning", job->vm->name, "%s; the "
                        "destination's migration status decides whether "
                        "it has the whole guest", msg);
        return;
    }
    job_failed(job, msg);
}

static void on_src_poll(PpQmp *q, json_object *ret, const GError *err,
                        gpointer opaque)
{
    Job *job = opaque;
    g_autoptr(GError) perr = NULL;
    const char *st = NULL;
    gint64 bytes = -1, requests = -1;

    if (!lj_of(job)) {
        return;
    }
    LJ(job)->src_poll_pending = false;
    if (err || !job_driving(job)) {
        return; /* a dead connection is reported by job_on_closed */
    }
    /* The whole reply is checked before any of it is used. */
    if (!pp_json_opt_str(ret, "status", &st, &perr) ||
        !pp_json_opt_int(ret, "ram.transferred", &bytes, &perr) ||
        !pp_json_opt_int(ret, "ram.postcopy-requests", &requests, &perr) ||
        !pp_postcopy_stats_update(&job->pc, ret, &perr)) {
        qmp_protocol_error(job->vm, "source", perr);
        return;
    }
    job->bytes = MAX(job->bytes, bytes);
    job->postcopy_requests = MAX(job->postcopy_requests, requests);
    if (st) {
        on_src_status(job, st);
    }
}

static void on_dst_poll(PpQmp *q, json_object *ret, const GError *err,
                        gpointer opaque)
{
    Job *job = opaque;
    g_autoptr(GError) perr = NULL;
    const char *st = NULL;

    if (!lj_of(job)) {
        return;
    }
    LJ(job)->dst_poll_pending = false;
    if (err || !job_driving(job)) {
        return;
    }
    if (!pp_json_opt_str(ret, "status", &st, &perr)) {
        qmp_protocol_error(job->vm, "destination", perr);
    } else if (st) {
        on_dst_status(job, st);
    }
}

static gboolean on_poll_timer(gpointer opaque)
{
    Job *job = opaque;
    LocalJob *lj = LJ(job);

    /* One query in flight per side: a monitor that stops answering must
     * not pile up requests. */
    if (!lj->src_poll_pending && !lj->src_completed && !lj->src_gone) {
        lj->src_poll_pending = true;
        pp_qmp_send(LV(job->vm)->qmp, "query-migrate", NULL, QMP_MS,
                    on_src_poll, job);
    }
    if (lj->dst_qmp && lj->dst_ready && !lj->dst_poll_pending &&
        (job->state == JOB_COMPLETING || job->state == JOB_POSTCOPY ||
         job->state == JOB_PAUSED || lj->src_gone)) {
        lj->dst_poll_pending = true;
        pp_qmp_send(lj->dst_qmp, "query-migrate", NULL, QMP_MS, on_dst_poll,
                    job);
    }
    return G_SOURCE_CONTINUE;
}

static void on_start_postcopy(PpQmp *q, json_object *ret, const GError *err,
                              gpointer opaque)
{
    Job *job = opaque;

    if (err && job_driving(job) && job->state == JOB_PRECOPY) {
        /* Pre-copy may already have completed: then this is harmless. */
        pp_daemon_event(job->d, "warning", job->vm->name,
                        "migrate-start-postcopy: %s", err->message);
    }
}

static void local_migrate_switch(PpDriver *drv, Job *job)
{
    pp_qmp_send(LV(job->vm)->qmp, "migrate-start-postcopy", NULL, QMP_MS,
                on_start_postcopy, job);
}

/* ---- post-copy pause and recovery ---- */

static void on_pause(PpQmp *q, json_object *ret, const GError *err,
                     gpointer opaque)
{
    Job *job = opaque;

    if (!lj_of(job) || !err) {
        return; /* paused: the MIGRATION events report it */
    }
    job->operator_paused = false;
    pp_daemon_event(job->d, "warning", job->vm->name, "migrate-pause: %s",
                    err->message);
}

static void local_migrate_pause(PpDriver *drv, Job *job)
{
    pp_qmp_send(LV(job->vm)->qmp, "migrate-pause", NULL, QMP_MS, on_pause,
                job);
}

/* The end of one recovery attempt's command chain. */
static bool recover_step_ok(Job *job, const char *cmd, const GError *err)
{
    if (!job_driving(job) || job->state != JOB_PAUSED || !job->recovering) {
        return false;
    }
    if (err) {
        g_autofree char *why = g_strdup_printf("%s: %s", cmd, err->message);
        job_paused(job, why);
        return false;
    }
    return true;
}

static void on_resume(PpQmp *q, json_object *ret, const GError *err,
                      gpointer opaque)
{
    /* Accepted: the source reports postcopy-recover, then -active. */
    recover_step_ok(opaque, "migrate (resume)", err);
}

static void on_recover_listening(PpQmp *q, json_object *ret,
                                 const GError *err, gpointer opaque)
{
    Job *job = opaque;
    g_autoptr(GError) perr = NULL;
    const char *port;

    if (!recover_step_ok(job, "query-migrate", err)) {
        return;
    }
    if (!(port = pp_mig_listen_port(ret, &perr))) {
        job_paused(job, perr->message);
        return;
    }
    json_object *args = json_object_new_object();
    g_autofree char *uri = g_strdup_printf("tcp:%s:%s", job->to->addr, port);
    json_object_object_add(args, "uri", json_object_new_string(uri));
    json_object_object_add(args, "resume", json_object_new_boolean(true));
    pp_qmp_send(LV(job->vm)->qmp, "migrate", args, QMP_MS, on_resume, job);
}

static void on_recover_incoming(PpQmp *q, json_object *ret,
                                const GError *err, gpointer opaque)
{
    Job *job = opaque;

    if (recover_step_ok(job, "migrate-recover", err)) {
        pp_qmp_send(LJ(job)->dst_qmp, "query-migrate", NULL, QMP_MS,
                    on_recover_listening, job);
    }
}

/*
 * The destination listens again (migrate-recover on port 0 of its
 * address), and the source resumes onto it (migrate resume=true), as
 * QEMU's docs/devel/migration/postcopy.rst describes.
 */
static void local_migrate_recover(PpDriver *drv, Job *job)
{
    LocalJob *lj = LJ(job);
    json_object *args;
    g_autofree char *uri = NULL;

    if (!lj->dst_qmp || !pp_qmp_is_connected(lj->dst_qmp) ||
        !pp_qmp_is_connected(LV(job->vm)->qmp)) {
        job_failed(job, "a QEMU of the move is gone: nothing to recover");
        return;
    }
    args = json_object_new_object();
    uri = g_strdup_printf("tcp:%s:0", job->to->addr);
    json_object_object_add(args, "uri", json_object_new_string(uri));
    pp_qmp_send(lj->dst_qmp, "migrate-recover", args, QMP_MS,
                on_recover_incoming, job);
}

/* Common head of the setup chain's reply callbacks: false when the job
 * is already over, or when this reply's error fails it. */
static bool step_ok(Job *job, const GError *err)
{
    if (!job_driving(job)) {
        return false;
    }
    if (err) {
        job_failed(job, err->message);
        return false;
    }
    return true;
}

static void on_migrate(PpQmp *q, json_object *ret, const GError *err,
                       gpointer opaque)
{
    Job *job = opaque;

    if (!step_ok(job, err)) {
        return;
    }
    LJ(job)->poll_source = g_timeout_add(POLL_MS, on_poll_timer, job);
    job_migrating(job);
}

/* The destination listens on port 0; its query-migrate names the port. */
static void on_dst_listening(PpQmp *q, json_object *ret, const GError *err,
                             gpointer opaque)
{
    Job *job = opaque;
    g_autoptr(GError) perr = NULL;
    const char *port = NULL;

    if (!step_ok(job, err)) {
        return;
    }
    if (!(port = pp_mig_listen_port(ret, &perr))) {
        job_failed(job, perr->message);
        return;
    }
    json_object *args = json_object_new_object();
    g_autofree char *uri = g_strdup_printf("tcp:%s:%s", job->to->addr, port);
    json_object_object_add(args, "uri", json_object_new_string(uri));
    if (job->mode.kind == PP_MIG_POSTCOPY_INSTANT) {
        /* our QEMU switches by itself once this is sent: from here on a
         * cancel is refused and an abort asks the source first */
        job->switch_requested = true;
    }
    pp_qmp_send(LV(job->vm)->qmp, "migrate", args, QMP_MS, on_migrate, job);
}

static void on_incoming(PpQmp *q, json_object *ret, const GError *err,
                        gpointer opaque)
{
    Job *job = opaque;

    if (!step_ok(job, err)) {
        return;
    }
    pp_qmp_send(LJ(job)->dst_qmp, "query-migrate", NULL, QMP_MS,
                on_dst_listening, job);
}

static void on_setup_step(PpQmp *q, json_object *ret, const GError *err,
                          gpointer opaque)
{
    Job *job = opaque;
    LocalJob *lj = lj_of(job);

    if (!lj) {
        return;
    }
    if (err && !lj->setup_failed && job_driving(job)) {
        lj->setup_failed = true;
        job_failed(job, err->message);
    }
    if (--lj->setup_pending > 0 || lj->setup_failed || !job_driving(job)) {
        return;
    }
    json_object *args = json_object_new_object();
    g_autofree char *uri = g_strdup_printf("tcp:%s:0", job->to->addr);
    json_object_object_add(args, "uri", json_object_new_string(uri));
    pp_qmp_send(lj->dst_qmp, "migrate-incoming", args, QMP_MS, on_incoming,
                job);
}

/* Handing in a hot set is an optimisation: a refusal must not stop the
 * move (or every later one). */
static void on_hot_set_step(PpQmp *q, json_object *ret, const GError *err,
                            gpointer opaque)
{
    Job *job = opaque;

    if (!lj_of(job)) {
        return;
    }
    if (err && job_driving(job)) {
        pp_daemon_event(job->d, "warning", job->vm->name,
                        "x-set-hot-set: %s; moving without the hot set",
                        err->message);
        g_clear_pointer(&job->vm->hot_set, json_object_put);
    }
    on_setup_step(q, ret, NULL, job);
}

static json_object *caps(const Job *job, bool dst)
{
    PpMigCap want[6] = {
        { "events", true },
        { "postcopy-ram", job->mode.kind != PP_MIG_PRECOPY },
        { "postcopy-blocktime", job->mode.kind != PP_MIG_PRECOPY && dst },
    };
    size_t n = 3;

    /* Only a QEMU of ours knows these (see has_instant, has_hot_first). */
    if (!dst) {
        n += job_our_caps(job, want + n);
    }
    return pp_mig_caps_args(want, n);
}

/* The destination answers on QMP: set both sides up (setup steps). */
static void setup_migration(Job *job)
{
    LocalDriver *ld = (LocalDriver *)job->d->drv;
    PpDaemon *d = ld->d;
    Vm *vm = job->vm;
    LocalVm *lv = LV(vm);
    LocalJob *lj = LJ(job);

    query_vcpus(lj->dst_qmp, lj->dst_vcpu_tids);
    json_object *params = json_object_new_object();
    json_object_object_add(params, "downtime-limit",
                           json_object_new_int64((gint64)d->cfg->downtime_ms));
    json_object_object_add(params, "max-bandwidth", json_object_new_int64(
                               (gint64)d->cfg->max_bandwidth * 1048576));
    lj->setup_pending = 3;
    if (job_hot_first(job)) {
        json_object *dp = json_object_new_object();

        job_our_source_params(job, params);
        json_object_object_add(dp, "x-postcopy-window", json_object_new_int64(
                                   (gint64)d->cfg->fault_window));
        lj->setup_pending++;
        pp_qmp_send(lj->dst_qmp, "migrate-set-parameters", dp, QMP_MS,
                    on_setup_step, job);
        if (vm->hot_set) {
            json_object *hs = json_object_new_object();

            json_object_object_add(hs, "blocks", json_object_get(vm->hot_set));
            lj->setup_pending++;
            pp_qmp_send(lv->qmp, "x-set-hot-set", hs, QMP_MS,
                        on_hot_set_step, job);
        }
    }
    pp_qmp_send(lv->qmp, "migrate-set-capabilities", caps(job, false), QMP_MS,
                on_setup_step, job);
    pp_qmp_send(lj->dst_qmp, "migrate-set-capabilities", caps(job, true),
                QMP_MS, on_setup_step, job);
    pp_qmp_send(lv->qmp, "migrate-set-parameters", params, QMP_MS,
                on_setup_step, job);
}


static void on_dst_ready(PpQmp *q, const GError *err, gpointer opaque)
{
    Vm *vm = opaque;
    Job *job = vm->job;

    if (!job || !lj_of(job) || LJ(job)->dst_qmp != q) {
        pp_qmp_free(q); /* not ours any more (cannot happen: freeing it
                         * cancels the handshake) */
        return;
    }
    if (err) {
        g_autofree char *msg = g_strdup_printf(
            "destination QEMU's monitor: %s", err->message);
        LJ(job)->dst_qmp = NULL;
        pp_qmp_free(q);
        job_failed(job, msg);
        return;
    }
    LJ(job)->dst_ready = true;
    if (job->aborting) {
        return;
    }
    setup_migration(job);
}

#define BOOT_POLL_MS 20
#define BOOT_TIMEOUT_S 30

/* Polled while the destination QEMU starts: never waited for. */
static gboolean on_dst_boot_poll(gpointer opaque)
{
    Job *job = opaque;
    LocalJob *lj = LJ(job);
    g_autoptr(GError) err = NULL;
    int r = pp_vm_poll_ready(lj->dst_proc, &err);

    if (r == 0 && g_get_monotonic_time() < lj->boot_deadline_us) {
        return G_SOURCE_CONTINUE;
    }
    lj->boot_source = 0;
    if (r == 0) {
        g_set_error(&err, PP_ERROR, PP_ERROR_TIMEOUT, "the destination "
                    "QEMU did not open its QMP socket within %d s",
                    BOOT_TIMEOUT_S);
    }
    if (r == 1) {
        lj->dst_qmp = pp_qmp_connect_async(pp_vm_qmp_path(lj->dst_proc), NULL,
                                           QMP_MS, on_vm_event, on_vm_closed,
                                           on_dst_ready, job->vm, &err);
    }
    if (!lj->dst_qmp) {
        job_failed(job, err->message);
    }
    return G_SOURCE_REMOVE;
}

/*
 * Start the destination QEMU and return: its boot and QMP handshake are
 * steps on the loop (on_dst_boot_poll, on_dst_ready), then the set-up
 * (setup_migration); a failure anywhere fails the job, which drops the
 * destination and leaves the guest on the source.
 */
static bool local_migrate_start(PpDriver *drv, Job *job, GError **errp)
{
    LocalDriver *ld = (LocalDriver *)drv;
    Vm *vm = job->vm;
    LocalJob *lj;
    g_autofree char *tag = g_strdup_printf("job%" G_GINT64_FORMAT, job->id);

    if (!LV(vm)->qmp || !pp_qmp_is_connected(LV(vm)->qmp)) {
        g_set_error(errp, PP_ERROR, PP_ERROR_FAILED, "%s's monitor is "
                    "unreachable: it is not moved until it answers",
                    vm->name);
        return false;
    }
    lj = g_new0(LocalJob, 1);

    lj->dst_vcpu_tids = g_array_new(FALSE, FALSE, sizeof(pid_t));
    job->priv = lj;
    lj->dst_proc = spawn(ld, vm, job->to, true, tag, false, errp);
    if (!lj->dst_proc) {
        return false;
    }
    lj->boot_deadline_us = g_get_monotonic_time() +
                           BOOT_TIMEOUT_S * G_USEC_PER_SEC;
    lj->boot_source = g_timeout_add(BOOT_POLL_MS, on_dst_boot_poll, job);
    return true;
}

/* ---- stopping QEMUs without waiting ---- */

#define STOP_GRACE_MS 2000
#define STOP_GIVE_UP_MS 10000

static void stopping_free(Stopping *st)
{
    if (st->source) {
        g_source_remove(st->source);
    }
    pp_vm_free(st->proc);   /* SIGKILLs one that still runs */
    g_free(st);
}

static gboolean on_stopping(gpointer opaque)
{
    Stopping *st = opaque;
    gint64 now = g_get_monotonic_time();

    if (pp_vm_is_running(st->proc) && now < st->give_up_us) {
        if (st->kill_at_us && now >= st->kill_at_us) {
            kill(pp_vm_pid(st->proc), SIGKILL);
            st->kill_at_us = 0;
        }
        return G_SOURCE_CONTINUE;
    }
    if (pp_vm_is_running(st->proc)) {
        g_printerr("warning: QEMU pid %d survives SIGKILL; left alone\n",
                   (int)pp_vm_pid(st->proc));
        pp_vm_forget(st->proc);
        st->proc = NULL;
    }
    st->source = 0;
    g_ptr_array_remove(st->ld->stopping, st); /* frees it */
    return G_SOURCE_REMOVE;
}

/* Ask @proc to exit (SIGTERM, SIGKILL after STOP_GRACE_MS) and forget it
 * once it is gone; returns at once. */
static void stop_later(LocalDriver *ld, PpVm *proc)
{
    Stopping *st;

    if (!proc) {
        return;
    }
    if (!pp_vm_is_running(proc)) {
        pp_vm_free(proc);
        return;
    }
    st = g_new0(Stopping, 1);
    st->ld = ld;
    st->proc = proc;
    kill(pp_vm_pid(proc), SIGTERM);
    st->kill_at_us = g_get_monotonic_time() + STOP_GRACE_MS * 1000;
    st->give_up_us = g_get_monotonic_time() + STOP_GIVE_UP_MS * 1000;
    st->source = g_timeout_add(50, on_stopping, st);
    g_ptr_array_add(ld->stopping, st);
}

/* Drop a process handle: stopping QEMU (in the background with @ld, else
 * waiting: only when the daemon exits), or leaving it to run. */
static void proc_drop(LocalDriver *ld, PpVm *proc, bool stop)
{
    if (!proc) {
        return;
    }
    if (stop && ld) {
        stop_later(ld, proc);
    } else if (stop) {
        pp_vm_stop(proc, 2000, NULL);
        pp_vm_free(proc);
    } else {
        pp_vm_forget(proc);
    }
}

static void job_drop(Job *job, bool stop, LocalDriver *ld)
{
    LocalJob *lj = LJ(job);

    if (!lj) {
        return;
    }
    if (lj->poll_source) {
        g_source_remove(lj->poll_source);
    }
    if (lj->gone_source) {
        g_source_remove(lj->gone_source);
    }
    if (lj->boot_source) {
        g_source_remove(lj->boot_source);
    }
    if (lj->kill_source) {
        g_source_remove(lj->kill_source);
    }
    pp_qmp_free(lj->dst_qmp);
    proc_drop(ld, lj->dst_proc, stop);
    g_array_unref(lj->dst_vcpu_tids);
    g_free(lj->src_status);
    g_free(lj->dst_status);
    g_free(lj);
    job->priv = NULL;
}

/* A job that ended: whatever destination it still holds has no guest. */
static void local_job_release(PpDriver *drv, Job *job)
{
    job_drop(job, true, (LocalDriver *)drv);
}

/* ---- VMs ---- */

static void local_vm_describe(PpDriver *drv, Vm *vm, json_object *o)
{
    LocalVm *lv = LV(vm);

    json_object_object_add(o, "pid", json_object_new_int(
                               lv->proc ? pp_vm_pid(lv->proc) : 0));
    if (lv->spec->address) {
        json_object_object_add(o, "address",
                               json_object_new_string(lv->spec->address));
        json_object_object_add(o, "mac",
                               json_object_new_string(lv->spec->mac));
    }
}

static void vm_drop(Vm *vm, bool stop)
{
    LocalVm *lv = LV(vm);

    if (!lv) {
        return;
    }
    if (lv->retry_source) {
        g_source_remove(lv->retry_source);
    }
    pp_qmp_free(lv->qmp);
    proc_drop(NULL, lv->proc, stop);
    for (guint i = 0; lv->extra && i < lv->extra->len; i++) {
        proc_drop(NULL, lv->extra->pdata[i], stop);
    }
    if (lv->extra) {
        g_ptr_array_unref(lv->extra);
    }
    g_array_unref(lv->vcpu_tids);
    g_hash_table_unref(lv->last_ns);
    g_free(lv->last_protocol_error);
    g_free(lv->exit_grace_why);
    g_free(lv);
    vm->priv = NULL;
}

/* The VM's guest stays as it is. */
static void local_vm_release(PpDriver *drv, Vm *vm)
{
    vm_drop(vm, false);
}

static LocalVm *local_vm_new(const PpVmSpec *spec);

static bool boot_vm(LocalDriver *ld, const PpVmSpec *spec, GError **errp)
{
    PpDaemon *d = ld->d;
    Host *host = pp_daemon_host(d, spec->host);
    LocalVm *lv = local_vm_new(spec);
    Vm *vm;

    vm = pp_daemon_add_vm(d, spec->name, host, spec->mem_mib, spec->vcpus, lv);
    lv->proc = spawn(ld, vm, host, false, "boot", true, errp);
    if (!lv->proc) {
        return false;
    }
    lv->qmp = pp_qmp_connect(pp_vm_qmp_path(lv->proc), QMP_MS, errp);
    if (!lv->qmp) {
        return false;
    }
    pp_qmp_attach(lv->qmp, NULL, on_vm_event, on_vm_closed, vm);
    pp_qmp_send(lv->qmp, "query-qmp-schema", NULL, QMP_MS, on_schema, vm);
    query_vcpus(lv->qmp, lv->vcpu_tids);
    pp_daemon_event(d, "vm-start", vm->name, "on %s (%s)", host->name,
                    host->where);
    return true;
}

/* ---- adopting what a previous run left ---- */

/* A QEMU of a previous run, found alive in one of a VM's run dirs. */
typedef struct Found {
    char *tag;              /* "boot" or "jobN" */
    PpVm *proc;
    PpQmp *qmp;
    Host *host;
    char *runstate;         /* query-status */
    char *migstatus;        /* query-migrate's status; "none" */
} Found;

static void found_free(Found *f)
{
    g_free(f->tag);
    pp_qmp_free(f->qmp);
    pp_vm_forget(f->proc);
    g_free(f->runstate);
    g_free(f->migstatus);
    g_free(f);
}

static char *qmp_string(PpQmp *qmp, const char *cmd, const char *key,
                        GError **errp)
{
    g_autoptr(json_object) r = pp_qmp_execute(qmp, cmd, NULL, QMP_MS, errp);
    g_autoptr(GError) perr = NULL;
    const char *v = NULL;
    /* query-migrate before any migration has no status (but a null or a
     * number is no answer) */
    bool ok = strcmp(cmd, "query-migrate") == 0 ?
              pp_json_opt_str(r, key, &v, &perr) :
              pp_json_get_str(r, key, &v, &perr);

    if (!r) {
        return NULL;
    }
    if (!ok) {
        g_set_error(errp, PP_ERROR, PP_ERROR_PROTOCOL, "%s: %s", cmd,
                    perr->message);
        return NULL;
    }
    return g_strdup(v ? v : "none");
}

/*
 * The QEMU a previous run started in RUN/VM/@tag, if it still runs.  An
 * error only when it runs but cannot be managed: the daemon must then not
 * start (a second copy of the guest would be worse than none).
 */
static bool find_qemu(LocalDriver *ld, const PpVmSpec *spec, const char *tag,
                      Found **out, GError **errp)
{
    PpDaemon *d = ld->d;
    g_autofree char *dir = g_build_filename(d->run_dir, spec->name, tag,
                                            NULL);
    g_autofree char *host_file = g_build_filename(dir, "host", NULL);
    g_autofree char *host_name = NULL;
    g_autofree char *name = g_strdup_printf("%s-%s", spec->name, tag);
    g_autoptr(GError) err = NULL;
    Found *f;
    PpVm *proc = pp_vm_adopt(dir, name, &err);

    *out = NULL;
    if (!proc) {
        return true;
    }
    f = g_new0(Found, 1);
    f->tag = g_strdup(tag);
    f->proc = proc;
    if (!pp_file_trusted(host_file) ||
        !g_file_get_contents(host_file, &host_name, NULL, NULL) ||
        !(f->host = pp_daemon_host(d, g_strstrip(host_name)))) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "VM '%s' still runs (pid %d, %s) on host '%s', which the "
                    "configuration does not have; stop it or add the host",
                    spec->name, (int)pp_vm_pid(proc), dir,
                    host_name ? host_name : "?");
        found_free(f);
        return false;
    }
    f->qmp = pp_qmp_connect(pp_vm_qmp_path(proc), QMP_MS, &err);
    if (f->qmp) {
        f->runstate = qmp_string(f->qmp, "query-status", "status", &err);
    }
    if (f->runstate) {
        f->migstatus = qmp_string(f->qmp, "query-migrate", "status", &err);
    }
    if (!f->migstatus) {
        g_set_error(errp, PP_ERROR, PP_ERROR_PROTOCOL,
                    "VM '%s' still runs (pid %d, %s) but its QMP monitor "
                    "does not answer: %s", spec->name, (int)pp_vm_pid(proc),
                    dir, err->message);
        found_free(f);
        return false;
    }
    *out = f;
    return true;
}

static LocalVm *local_vm_new(const PpVmSpec *spec)
{
    LocalVm *lv = g_new0(LocalVm, 1);

    lv->spec = spec;
    lv->vcpu_tids = g_array_new(FALSE, FALSE, sizeof(pid_t));
    lv->last_ns = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                        g_free);
    return lv;
}

/* Manage @f's QEMU as the VM's own process. */
static Vm *adopt_vm(LocalDriver *ld, const PpVmSpec *spec, Found *f)
{
    LocalVm *lv = local_vm_new(spec);
    Vm *vm = pp_daemon_add_vm(ld->d, spec->name, f->host, spec->mem_mib,
                              spec->vcpus, lv);

    lv->proc = g_steal_pointer(&f->proc);
    lv->qmp = g_steal_pointer(&f->qmp);
    pp_qmp_attach(lv->qmp, NULL, on_vm_event, on_vm_closed, vm);
    pp_qmp_send(lv->qmp, "query-qmp-schema", NULL, QMP_MS, on_schema, vm);
    query_vcpus(lv->qmp, lv->vcpu_tids);
    pp_daemon_event(ld->d, "vm-adopted", vm->name, "on %s (pid %d, %s, "
                    "started by a previous run)", f->host->name,
                    (int)pp_vm_pid(lv->proc), f->runstate);
    return vm;
}

/* Keep @f's QEMU with the VM without using it (never resumed, never
 * stopped by us: an operator decides). */
static void keep_extra(Vm *vm, Found *f)
{
    LocalVm *lv = LV(vm);

    if (!lv->extra) {
        lv->extra = g_ptr_array_new();
    }
    g_ptr_array_add(lv->extra, g_steal_pointer(&f->proc));
}

static bool stopped_by_migration(const char *runstate)
{
    return strcmp(runstate, "postmigrate") == 0 ||
           strcmp(runstate, "finish-migrate") == 0 ||
           strcmp(runstate, "postcopy-paused") == 0 ||
           strcmp(runstate, "inmigrate") == 0;
}

static bool mig_running(const char *st)
{
    static const char *const running[] = {
        "setup", "active", "device", "pre-switchover", "wait-unplug", NULL
    };

    return g_strv_contains(running, st);
}

/* One QEMU left, no move to carry on: is it the guest? */
static bool settle_single(LocalDriver *ld, const PpVmSpec *spec, Found *f,
                          const PpJobRow **rowp)
{
    PpDaemon *d = ld->d;
    const PpJobRow *row = *rowp;
    Vm *vm;

    *rowp = NULL; /* settled here, whatever happens */
    if (strcmp(f->runstate, "inmigrate") == 0) {
        /* A destination whose source is gone holds no guest. */
        pp_vm_stop(f->proc, 2000, NULL);
        if (row) {
            pp_daemon_end_stale_job(d, row, "failed", "the source QEMU died "
                                    "while the daemon was away");
        }
        pp_daemon_event(d, "vm-lost", spec->name, "only an incoming "
                        "migration's destination was left; booting again");
        return false;
    }
    vm = adopt_vm(ld, spec, f);
    if (row) {
        bool at_dst = strcmp(f->tag, "boot") != 0 &&
                      g_strcmp0(f->host->name, row->to) == 0;
        pp_daemon_end_stale_job(d, row, at_dst ? "done" : "failed", at_dst ?
                                "finished while the daemon was away" :
                                "the destination QEMU went away while the "
                                "daemon was away");
    }
    if (mig_running(f->migstatus)) {
        /* Its destination is gone: the migration cannot end well. */
        pp_qmp_send(LV(vm)->qmp, "migrate_cancel", NULL, QMP_MS, NULL, NULL);
    } else if (stopped_by_migration(f->runstate)) {
        /* Paused by a migration whose destination is gone: the guest may
         * have run there, so it is not resumed behind the operator's
         * back. */
        vm->state = VM_BROKEN;
        pp_daemon_event(d, "alert", spec->name, "found paused by a migration "
                        "(%s, migration %s) whose destination is gone; not "
                        "resumed", f->runstate, f->migstatus);
    }
    return true;
}

static void on_adopted_switch(Job *job)
{
    if (job->state == JOB_PRECOPY && job->mode.kind != PP_MIG_PRECOPY &&
        job->mode.kind != PP_MIG_POSTCOPY_INSTANT && !job->switch_requested) {
        /* Its timer died with the previous daemon: switch now. */
        job->switch_requested = true;
        local_migrate_switch(&((LocalDriver *)job->d->drv)->parent, job);
    }
}

/* Source and destination of @row's move both run: carry the move on. */
static void settle_move(LocalDriver *ld, const PpJobRow *row,
                        const PpVmSpec *spec, Found *src, Found *dst)
{
    PpDaemon *d = ld->d;
    Vm *vm;
    LocalJob *lj;
    Job *job;
    JobState st;
    bool dst_runs = strcmp(dst->runstate, "running") == 0;

    if (strcmp(src->migstatus, "completed") == 0 &&
        strcmp(dst->migstatus, "completed") == 0 && dst_runs) {
        /* It finished while the daemon was away. */
        pp_vm_stop(src->proc, 2000, NULL);
        adopt_vm(ld, spec, dst);
        pp_daemon_end_stale_job(d, row, "done",
                                "finished while the daemon was away");
        return;
    }
    if (!dst_runs && !mig_running(src->migstatus) &&
        strcmp(src->migstatus, "postcopy-active") != 0 &&
        strcmp(src->migstatus, "completed") != 0 &&
        strcmp(src->runstate, "running") == 0) {
        /* Never started, or failed before the switch: the guest is on the
         * source, the destination holds nothing. */
        pp_vm_stop(dst->proc, 2000, NULL);
        adopt_vm(ld, spec, src);
        pp_daemon_end_stale_job(d, row, "failed", "the migration had not "
                                "started or had failed when the daemon came "
                                "back");
        return;
    }
    vm = adopt_vm(ld, spec, src);
    if (g_strcmp0(row->from, src->host->name) != 0 ||
        g_strcmp0(row->to, dst->host->name) != 0) {
        /* The record and the hosts disagree: touch nothing. */
        keep_extra(vm, dst);
        vm->state = VM_BROKEN;
        pp_daemon_end_stale_job(d, row, "broken", "source and destination "
                                "are not where the record says");
        pp_daemon_event(d, "alert", vm->name, "two QEMUs found (%s on %s, %s "
                        "on %s); neither resumed", src->tag, src->host->name,
                        dst->tag, dst->host->name);
        return;
    }
    if (strcmp(src->migstatus, "completed") == 0) {
        st = JOB_COMPLETING;
    } else if (mig_running(src->migstatus) && !dst_runs) {
        st = JOB_PRECOPY;
    } else {
        st = JOB_POSTCOPY;
    }
    lj = g_new0(LocalJob, 1);
    lj->dst_vcpu_tids = g_array_new(FALSE, FALSE, sizeof(pid_t));
    lj->dst_proc = g_steal_pointer(&dst->proc);
    lj->dst_qmp = g_steal_pointer(&dst->qmp);
    lj->dst_ready = true;
    lj->src_completed = st == JOB_COMPLETING;
    lj->dst_completed = strcmp(dst->migstatus, "completed") == 0;
    job = job_adopt(d, row, vm, src->host, dst->host, st,
                    dst_runs || st == JOB_POSTCOPY, lj);
    g_ptr_array_remove(d->stale_jobs, (gpointer)row);
    pp_qmp_attach(lj->dst_qmp, NULL, on_vm_event, on_vm_closed, vm);
    query_vcpus(lj->dst_qmp, lj->dst_vcpu_tids);
    lj->poll_source = g_timeout_add(POLL_MS, on_poll_timer, job);
    on_adopted_switch(job);
    /* Paused post-copy, failed, or already over: the usual rules. */
    on_src_status(job, src->migstatus);
    if (job_driving(job)) {
        on_dst_status(job, dst->migstatus);
    }
}

/*
 * Make @spec's VM run under this daemon: adopt the QEMU a previous run
 * left (carrying an unfinished move on), or boot it.
 */
static bool settle_vm(LocalDriver *ld, const PpVmSpec *spec, GError **errp)
{
    PpDaemon *d = ld->d;
    const PpJobRow *row = pp_daemon_stale_job(d, spec->name);
    g_autofree char *vm_dir = g_build_filename(d->run_dir, spec->name, NULL);
    g_autoptr(GDir) dh = g_dir_open(vm_dir, 0, NULL);
    g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func(
        (GDestroyNotify)found_free);
    g_autofree char *dst_tag = row ? g_strdup_printf("job%" G_GINT64_FORMAT,
                                                     row->id) : NULL;
    Found *src = NULL, *dst = NULL;
    const char *name;
    bool ok = true;

    while (dh && (name = g_dir_read_name(dh))) {
        Found *f;
        if (!find_qemu(ld, spec, name, &f, errp)) {
            ok = false;
            continue; /* the others are left alone, not killed */
        }
        if (f) {
            g_ptr_array_add(found, f);
        }
    }
    if (!ok) {
        return false;
    }
    for (guint i = 0; i < found->len; i++) {
        Found *f = found->pdata[i];
        if (dst_tag && strcmp(f->tag, dst_tag) == 0) {
            dst = f;
        } else if (!src) {
            src = f;
        }
    }
    if (found->len == 2 && src && dst) {
        settle_move(ld, row, spec, src, dst);
        return true;
    }
    if (found->len == 1 && settle_single(ld, spec, found->pdata[0], &row)) {
        return true;
    }
    if (found->len > 1) {
        /* No record tells them apart: keep all, resume none. */
        Vm *vm = adopt_vm(ld, spec, found->pdata[0]);
        for (guint i = 1; i < found->len; i++) {
            keep_extra(vm, found->pdata[i]);
        }
        vm->state = VM_BROKEN;
        pp_daemon_event(d, "alert", spec->name, "%u QEMUs of this VM were "
                        "left running; none is resumed or stopped", found->len);
        if (row) {
            pp_daemon_end_stale_job(d, row, "broken", "more QEMUs than the "
                                    "move explains");
        }
        return true;
    }
    if (row) {
        pp_daemon_end_stale_job(d, row, "abandoned", "neither QEMU ran any "
                                "more when the daemon came back");
    }
    return boot_vm(ld, spec, errp);
}

/* ---- life cycle ---- */

static void local_close(PpDriver *drv, bool stop_vms)
{
    LocalDriver *ld = (LocalDriver *)drv;
    PpDaemon *d = ld->d;

    /* Connections first: no callback may run into a freed job. */
    for (guint i = 0; i < d->vms->len; i++) {
        Vm *vm = d->vms->pdata[i];
        if (vm->priv) {
            pp_qmp_free(LV(vm)->qmp);
            LV(vm)->qmp = NULL;
        }
    }
    for (guint i = 0; i < d->jobs->len; i++) {
        job_drop(d->jobs->pdata[i], stop_vms, NULL);
    }
    for (guint i = 0; i < d->vms->len; i++) {
        vm_drop(d->vms->pdata[i], stop_vms);
    }
    /* Without the VMs the network goes too; with them it stays, for
     * their migrations and the next daemon. */
    if (ld->net_up && stop_vms) {
        net_down(ld);
    }
    for (guint i = 0; i < d->hosts->len; i++) {
        Host *h = d->hosts->pdata[i];
        if (h->priv) {
            g_free(LH(h)->netns);
            g_free(h->priv);
            h->priv = NULL;
        }
    }
    /* QEMUs still being stopped: the daemon exits, so they go now. */
    g_ptr_array_unref(ld->stopping);
    g_free(ld->net_helper);
    g_free(ld);
}

static bool local_setup(LocalDriver *ld, GError **errp);

static PpDriver *local_open(PpDaemon *d, GError **errp)
{
    LocalDriver *ld = g_new0(LocalDriver, 1);

    ld->stopping = g_ptr_array_new_with_free_func(
        (GDestroyNotify)stopping_free);

    ld->parent.ops = &pp_driver_local;
    ld->parent.d = ld->d = d;
    /* VMs announced from here on must reach this driver's release. */
    d->drv = &ld->parent;
    if (!local_setup(ld, errp)) {
        /* Leave what runs as it is: the next start adopts it. */
        local_close(&ld->parent, false);
        d->drv = NULL;
        return NULL;
    }
    return &ld->parent;
}

static bool local_setup(LocalDriver *ld, GError **errp)
{
    PpDaemon *d = ld->d;
    const char *helper = g_getenv("PP_NET_HELPER");

    if (geteuid() != 0) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "the local driver needs root (network namespaces)");
        return false;
    }
    for (const char *f = d->cfg->qemu; f; f = f == d->cfg->qemu ?
         d->cfg->kernel : f == d->cfg->kernel ? d->cfg->initrd : NULL) {
        if (!g_file_test(f, G_FILE_TEST_EXISTS)) {
            g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                        "%s: '%s' does not exist (run make qemu guest?)",
                        d->cfg->path, f);
            return false;
        }
    }
    if (d->cfg->qemu_user) {
        /* QEMU as that user must reach its run directory (traverse
         * only) and have what post-copy needs, checked now rather than
         * in the middle of a move. */
        g_autoptr(GError) uerr = NULL;

        if (!pp_user_can_run_qemu(d->cfg->qemu_user,
                                  strcmp(d->cfg->accel, "kvm") == 0, &uerr)) {
            g_set_error(errp, PP_ERROR, PP_ERROR_INVALID, "%s: qemu_user: %s",
                        d->cfg->path, uerr->message);
            return false;
        }
        if (g_mkdir_with_parents(d->run_dir, 0711) < 0 ||
            chmod(d->cfg->state_dir, 0711) < 0 || chmod(d->run_dir, 0711) < 0) {
            g_set_error(errp, PP_ERROR, PP_ERROR_IO, "cannot open '%s' to "
                        "qemu_user: %s", d->run_dir, g_strerror(errno));
            return false;
        }
    }
    /* The network helper: $PP_NET_HELPER, the build tree's, or the one
     * installed beside the binary (PREFIX/libexec/postpack). */
    if (helper) {
        ld->net_helper = g_strdup(helper);
    } else if (g_file_test(PP_NET_HELPER, G_FILE_TEST_IS_EXECUTABLE)) {
        ld->net_helper = g_strdup(PP_NET_HELPER);
    } else {
        g_autofree char *exe = g_file_read_link("/proc/self/exe", NULL);
        g_autofree char *bindir = g_path_get_dirname(exe ? exe : ".");
        ld->net_helper = g_build_filename(bindir, "..", "libexec", "postpack",
                                          "pp-net", NULL);
    }
    for (guint i = 0; i < d->hosts->len; i++) {
        Host *h = d->hosts->pdata[i];
        LocalHost *lh = g_new0(LocalHost, 1);

        lh->cfg = pp_config_host(d->cfg, h->name);
        pp_cpuset_parse(lh->cfg->cpus, &lh->set, NULL);
        lh->work_set = lh->set;
        if (lh->cfg->host_work_cpus) {
            pp_cpuset_parse(lh->cfg->host_work_cpus, &lh->work_set, NULL);
        }
        lh->split = !CPU_EQUAL(&lh->set, &lh->work_set);
        h->priv = lh;
    }
    if (!net_up(ld, errp)) {
        return false;
    }
    for (guint i = 0; i < d->cfg->vms->len; i++) {
        if (!settle_vm(ld, d->cfg->vms->pdata[i], errp)) {
            return false;
        }
    }
    return true;
}

const PpDriverOps pp_driver_local = {
    .name = "local",
    .owns_vms = true,
    .description = "emulated hosts: CPU sets of this machine, each with a "
                   "network namespace; VMs from [vm NAME] sections",
    .open = local_open,
    .sample = local_sample,
    .migrate_start = local_migrate_start,
    .migrate_switch = local_migrate_switch,
    .migrate_abort = local_migrate_abort,
    .migrate_pause = local_migrate_pause,
    .migrate_recover = local_migrate_recover,
    .job_release = local_job_release,
    .vm_describe = local_vm_describe,
    .vm_release = local_vm_release,
    .close = local_close,
};
