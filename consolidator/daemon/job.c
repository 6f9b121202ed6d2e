/*
 * Migration jobs: one state machine per move of a VM (see daemon.h).
 *
 *   STARTING -> SETUP -> PRECOPY -> [POSTCOPY ->] COMPLETING -> DONE
 *        \________\________\______________________________/-> FAILED
 *        \________\________\______________________________/-> CANCELLED
 *                                  POSTCOPY/COMPLETING -> BROKEN
 *
 * Before the switch (STARTING..PRECOPY) any failure or a cancel kills the
 * destination and leaves the guest running on the source: FAILED and
 * CANCELLED lose no VM.  Once
 * QEMU reports postcopy-active the guest runs on the destination and the
 * source holds pages only it has: the source is never resumed, and a
 * failure from there on is BROKEN (both QEMUs are kept for recovery).
 * Every transition goes through job_set_state(), which checks it, stores
 * the phase in the database and records an event.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "daemon.h"
#include "migqmp.h"
#include "pp-error.h"

#include <math.h>
#include <string.h>

#define QMP_MS 5000
#define POLL_MS 250

static const char *const state_names[JOB__MAX] = {
    [JOB_STARTING] = "starting",
    [JOB_SETUP] = "setup",
    [JOB_PRECOPY] = "precopy",
    [JOB_POSTCOPY] = "postcopy",
    [JOB_COMPLETING] = "completing",
    [JOB_DONE] = "done",
    [JOB_FAILED] = "failed",
    [JOB_CANCELLED] = "cancelled",
    [JOB_BROKEN] = "broken",
};

const char *job_state_name(JobState s)
{
    return s < JOB__MAX ? state_names[s] : "?";
}

bool job_is_active(const Job *job)
{
    return job->state < JOB_DONE;
}

Host *vm_guest_host(const Vm *vm)
{
    if (vm->job && vm->job->switched) {
        return vm->job->to;
    }
    return vm->host;
}

/* Allowed transitions: from -> bitmask of targets. */
static const unsigned allowed[JOB__MAX] = {
    [JOB_STARTING] = 1u << JOB_SETUP | 1u << JOB_FAILED | 1u << JOB_CANCELLED,
    [JOB_SETUP] = 1u << JOB_PRECOPY | 1u << JOB_FAILED | 1u << JOB_CANCELLED,
    /* PRECOPY -> BROKEN: QEMU switched before we saw it. */
    [JOB_PRECOPY] = 1u << JOB_POSTCOPY | 1u << JOB_COMPLETING |
                    1u << JOB_FAILED | 1u << JOB_CANCELLED | 1u << JOB_BROKEN,
    [JOB_POSTCOPY] = 1u << JOB_COMPLETING | 1u << JOB_BROKEN,
    /* COMPLETING -> FAILED: a converged pre-copy whose destination failed;
     * the paused source is resumed. */
    [JOB_COMPLETING] = 1u << JOB_DONE | 1u << JOB_BROKEN | 1u << JOB_FAILED,
};

static void job_set_state(Job *job, JobState to, const char *detail)
{
    PpDaemon *d = job->d;
    g_autoptr(GError) err = NULL;

    if (!(allowed[job->state] & (1u << to))) {
        /* A bug, not an input error: keep the job where it is. */
        pp_daemon_event(d, "bug", job->vm->spec->name,
                        "job %" G_GINT64_FORMAT ": refused transition %s -> %s",
                        job->id, job_state_name(job->state),
                        job_state_name(to));
        return;
    }
    job->state = to;
    if (!pp_store_job_update(d->store, job->id, pp_wall_now(),
                             job_state_name(to), detail, &err)) {
        pp_daemon_event(d, "warning", job->vm->spec->name,
                        "cannot record job phase: %s", err->message);
    }
    pp_daemon_event(d, "move-phase", job->vm->spec->name,
                    "job %" G_GINT64_FORMAT " %s -> %s: %s%s%s", job->id,
                    job->from->cfg->name, job->to->cfg->name,
                    job_state_name(to), detail ? ": " : "",
                    detail ? detail : "");
}

static void job_stop_timers(Job *job)
{
    if (job->poll_source) {
        g_source_remove(job->poll_source);
        job->poll_source = 0;
    }
    if (job->postcopy_source) {
        g_source_remove(job->postcopy_source);
        job->postcopy_source = 0;
    }
}

/* Still driving the migration (not over, not being aborted). */
static bool job_live(const Job *job)
{
    return job_is_active(job) && !job->aborting;
}

/* After the switch: the source must never run the guest again. */
static void job_broken(Job *job, const char *why)
{
    Vm *vm = job->vm;

    job_set_state(job, JOB_BROKEN, why);
    vm->state = VM_BROKEN;
    pp_daemon_event(job->d, "alert", vm->spec->name,
                    "move failed after the guest switched hosts (%s); the "
                    "source is not resumed, both QEMUs are kept for "
                    "recovery", why);
}

/* Before the switch: drop the destination, keep the guest on the source. */
static void job_abort_finish(Job *job, JobState end, bool resume_source)
{
    Vm *vm = job->vm;

    if (resume_source && vm->qmp && pp_qmp_is_connected(vm->qmp)) {
        if (!job->src_completed) {
            pp_qmp_send(vm->qmp, "migrate_cancel", NULL, QMP_MS, NULL, NULL);
        }
        /* A failed or cancelled pre-copy resumes the source by itself; a
         * completed one left it paused for a destination that failed. */
        pp_qmp_send(vm->qmp, "cont", NULL, QMP_MS, NULL, NULL);
    }
    pp_qmp_free(job->dst_qmp);
    job->dst_qmp = NULL;
    if (job->dst_proc) {
        pp_vm_stop(job->dst_proc, 2000, NULL);
        pp_vm_free(job->dst_proc);
        job->dst_proc = NULL;
    }
    job_set_state(job, end, job->error);
    vm->job = NULL;
    if (vm->state == VM_MIGRATING) {
        vm->state = VM_RUNNING;
    }
    job->d->last_relocation = pp_wall_now();
}

static void on_abort_status(PpQmp *q, json_object *ret, const GError *err,
                            gpointer opaque)
{
    Job *job = opaque;
    json_object *st;
    bool running = !err && json_object_object_get_ex(ret, "status", &st) &&
                   strcmp(json_object_get_string(st), "running") == 0;

    job->aborting = false;
    if (running) {
        job_abort_finish(job, job->abort_end, false);
    } else {
        job_broken(job, job->error);
    }
}

/*
 * End a job that did not complete, in @end (FAILED or CANCELLED) when the
 * guest can stay on the source, else BROKEN.  Once the switch to post-copy
 * was requested QEMU may have switched before we read its postcopy-active
 * event, so the source is asked first and never resumed by us: if it
 * still runs the guest the move simply failed; otherwise it is broken.
 */
static void job_abort(Job *job, JobState end, const char *why)
{
    if (!job_live(job)) {
        return;
    }
    g_free(job->error);
    job->error = g_strdup(why);
    job->t_end = pp_wall_now();
    job_stop_timers(job);
    if (job->switched) {
        job_broken(job, why);
    } else if (job->switch_requested) {
        job->aborting = true;
        job->abort_end = end;
        pp_qmp_send(job->vm->qmp, "query-status", NULL, QMP_MS,
                    on_abort_status, job);
    } else {
        job_abort_finish(job, end, true);
    }
}

static void job_fail(Job *job, const char *why)
{
    job_abort(job, JOB_FAILED, why);
}

bool job_cancel(Job *job, GError **errp)
{
    if (!job_is_active(job)) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "job %" G_GINT64_FORMAT " is already %s", job->id,
                    job_state_name(job->state));
        return false;
    }
    if (job->switch_requested || job->state >= JOB_POSTCOPY) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "job %" G_GINT64_FORMAT " has switched (or asked QEMU to "
                    "switch) to the destination; a post-copy move cannot go "
                    "back", job->id);
        return false;
    }
    if (job->aborting) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "job %" G_GINT64_FORMAT " is already being stopped",
                    job->id);
        return false;
    }
    job_abort(job, JOB_CANCELLED, "cancelled by the operator");
    return true;
}

/* Both sides completed: the destination becomes the VM's process. */
static void job_finish(Job *job)
{
    Vm *vm = job->vm;
    PpVm *old_proc = vm->proc;
    PpQmp *old_qmp = vm->qmp;
    g_autofree char *detail = NULL;

    job_stop_timers(job);
    job->t_end = pp_wall_now();
    vm->proc = g_steal_pointer(&job->dst_proc);
    vm->qmp = g_steal_pointer(&job->dst_qmp);
    g_array_set_size(vm->vcpu_tids, 0);
    g_array_append_vals(vm->vcpu_tids, job->dst_vcpu_tids->data,
                        job->dst_vcpu_tids->len);
    vm->host = job->to;
    vm->state = VM_RUNNING;
    vm->job = NULL;
    /* The source is finished (postmigrate): retire it. */
    pp_qmp_free(old_qmp);
    if (old_proc) {
        pp_vm_stop(old_proc, 2000, NULL);
        pp_vm_free(old_proc);
    }
    detail = g_strdup_printf(
        "switchover %.0f ms, total %.1f s, %.1f MiB, %" G_GINT64_FORMAT
        " remote page requests",
        job->t_resume > 0 && job->t_stop > 0 ?
        (job->t_resume - job->t_stop) * 1000 : NAN,
        job->t_end - job->t_start, job->bytes / 1048576.0,
        job->postcopy_requests);
    if (job->pc.fault_p50_us >= 0) {
        g_autofree char *base = g_steal_pointer(&detail);
        detail = g_strdup_printf("%s, fault latency p50 %" G_GINT64_FORMAT
                                 " us p99 %" G_GINT64_FORMAT " us", base,
                                 job->pc.fault_p50_us, job->pc.fault_p99_us);
    }
    if (job->pc.hot_pages >= 0) {
        g_autofree char *base = g_steal_pointer(&detail);
        detail = g_strdup_printf("%s, hot set %" G_GINT64_FORMAT " pages "
                                 "(tracked %" G_GINT64_FORMAT " ms) local "
                                 "after %" G_GINT64_FORMAT " ms", base,
                                 job->pc.hot_pages, job->pc.hot_tracked_ms,
                                 job->pc.hot_pushed_ms);
    }
    job_set_state(job, JOB_DONE, detail);
    job->d->last_relocation = pp_wall_now();
}

static bool hot_first_used(const Job *job)
{
    return job->vm->has_hot_first && job->d->cfg->hot_first &&
           job->mode.kind != PP_MIG_PRECOPY;
}

static void finish_step_done(Job *job)
{
    if (--job->finish_pending == 0 && job->state == JOB_COMPLETING) {
        job_finish(job);
    }
}

/* The source's hot set, kept for this VM's next move. */
static void on_final_hot_set(PpQmp *q, json_object *ret, const GError *err,
                             gpointer opaque)
{
    Job *job = opaque;

    if (err) {
        /* Not worth failing a finished move: the next one tracks again. */
        pp_daemon_event(job->d, "warning", job->vm->spec->name,
                        "x-query-hot-set: %s", err->message);
    } else if (json_object_is_type(ret, json_type_array)) {
        json_object_put(job->vm->hot_set);
        job->vm->hot_set = json_object_get(ret);
    }
    finish_step_done(job);
}

/* The destination's fault counters. */
static void on_final_dst_info(PpQmp *q, json_object *ret, const GError *err,
                              gpointer opaque)
{
    Job *job = opaque;

    if (!err) {
        pp_postcopy_stats_update(&job->pc, ret);
    }
    finish_step_done(job);
}

static void maybe_finish(Job *job)
{
    if (job->state != JOB_COMPLETING || !job->src_completed ||
        !job->dst_completed || job->finish_pending > 0) {
        return;
    }
    if (!hot_first_used(job)) {
        job_finish(job);
        return;
    }
    /* Two last questions before the source is retired. */
    job->finish_pending = 2;
    pp_qmp_send(job->vm->qmp, "x-query-hot-set", NULL, QMP_MS,
                on_final_hot_set, job);
    pp_qmp_send(job->dst_qmp, "query-migrate", NULL, QMP_MS,
                on_final_dst_info, job);
}

static void on_src_status(Job *job, const char *status)
{
    if (!job_live(job)) {
        return;
    }
    if (strcmp(status, "postcopy-active") == 0 &&
        job->state == JOB_PRECOPY) {
        job->switched = true;
        job_set_state(job, JOB_POSTCOPY, "guest runs on the destination");
    } else if (strcmp(status, "completed") == 0) {
        job->src_completed = true;
        if (job->state == JOB_PRECOPY || job->state == JOB_POSTCOPY) {
            job_set_state(job, JOB_COMPLETING, "source sent everything");
        }
        maybe_finish(job);
    } else if (strcmp(status, "failed") == 0 ||
               strcmp(status, "cancelled") == 0 ||
               strcmp(status, "postcopy-paused") == 0) {
        g_autofree char *why = g_strdup_printf("source migration %s", status);
        job_fail(job, why);
    }
}

static void on_dst_status(Job *job, const char *status)
{
    if (!job_live(job)) {
        return;
    }
    if (strcmp(status, "completed") == 0) {
        job->dst_completed = true;
        maybe_finish(job);
    } else if (strcmp(status, "failed") == 0 ||
               strcmp(status, "postcopy-paused") == 0) {
        g_autofree char *why = g_strdup_printf("destination migration %s",
                                               status);
        job_fail(job, why);
    }
}

void job_on_event(Job *job, PpQmp *from, const char *name, json_object *data,
                  gint64 time_us)
{
    bool src = from == job->vm->qmp;
    json_object *st;

    if (strcmp(name, "MIGRATION") == 0 && data &&
        json_object_object_get_ex(data, "status", &st)) {
        if (src) {
            on_src_status(job, json_object_get_string(st));
        } else {
            on_dst_status(job, json_object_get_string(st));
        }
    } else if (strcmp(name, "STOP") == 0 && src && job->t_stop == 0) {
        job->t_stop = time_us / 1e6;
    } else if (strcmp(name, "RESUME") == 0 && !src) {
        /* The destination runs the guest: from here on, no way back. */
        job->t_resume = time_us / 1e6;
        job->switched = true;
    }
}

void job_on_closed(Job *job, PpQmp *from, const GError *why)
{
    g_autofree char *msg = g_strdup_printf(
        "%s QEMU went away: %s", from == job->vm->qmp ? "source" :
        "destination", why ? why->message : "connection closed");

    if (from == job->vm->qmp && job->state == JOB_COMPLETING &&
        job->src_completed && job->dst_completed) {
        /* The source went away during the last queries: the guest is
         * whole on the destination, so the move is done regardless. */
        job_finish(job);
        return;
    }
    if (from == job->vm->qmp && !job->switched) {
        /* The source died before the switch: nothing runs the guest. */
        job->vm->state = VM_LOST;
    }
    job_fail(job, msg);
}

/* ---- polling: progress, and a safety net for missed events ---- */

static void on_src_poll(PpQmp *q, json_object *ret, const GError *err,
                        gpointer opaque)
{
    Job *job = opaque;
    json_object *st;

    job->src_poll_pending = false;
    if (err || !job_live(job)) {
        return; /* a dead connection is reported by job_on_closed */
    }
    job->bytes = MAX(job->bytes, pp_json_int(ret, "ram", "transferred"));
    job->postcopy_requests = MAX(job->postcopy_requests,
                                 pp_json_int(ret, "ram", "postcopy-requests"));
    pp_postcopy_stats_update(&job->pc, ret);
    if (json_object_object_get_ex(ret, "status", &st)) {
        on_src_status(job, json_object_get_string(st));
    }
}

static void on_dst_poll(PpQmp *q, json_object *ret, const GError *err,
                        gpointer opaque)
{
    Job *job = opaque;
    json_object *st;

    job->dst_poll_pending = false;
    if (!err && job_live(job) &&
        json_object_object_get_ex(ret, "status", &st)) {
        on_dst_status(job, json_object_get_string(st));
    }
}

static gboolean on_poll_timer(gpointer opaque)
{
    Job *job = opaque;

    /* One query in flight per side: a monitor that stops answering must
     * not pile up requests. */
    if (!job->src_poll_pending && !job->src_completed) {
        job->src_poll_pending = true;
        pp_qmp_send(job->vm->qmp, "query-migrate", NULL, QMP_MS, on_src_poll,
                    job);
    }
    if (job->dst_qmp && !job->dst_poll_pending &&
        (job->state == JOB_COMPLETING || job->state == JOB_POSTCOPY)) {
        job->dst_poll_pending = true;
        pp_qmp_send(job->dst_qmp, "query-migrate", NULL, QMP_MS, on_dst_poll,
                    job);
    }
    return G_SOURCE_CONTINUE;
}

/* ---- setup chain ---- */

static void on_start_postcopy(PpQmp *q, json_object *ret, const GError *err,
                              gpointer opaque)
{
    Job *job = opaque;

    if (err && job_is_active(job) && job->state == JOB_PRECOPY) {
        /* Pre-copy may already have completed: then this is harmless. */
        pp_daemon_event(job->d, "warning", job->vm->spec->name,
                        "migrate-start-postcopy: %s", err->message);
    }
}

static gboolean on_postcopy_timer(gpointer opaque)
{
    Job *job = opaque;

    job->postcopy_source = 0;
    if (job->state == JOB_PRECOPY && job_live(job)) {
        job->switch_requested = true;
        pp_qmp_send(job->vm->qmp, "migrate-start-postcopy", NULL, QMP_MS,
                    on_start_postcopy, job);
    }
    return G_SOURCE_REMOVE;
}

/* Common head of the setup chain's reply callbacks: false when the job
 * is already over, or when this reply's error fails it. */
static bool step_ok(Job *job, const GError *err)
{
    if (!job_live(job)) {
        return false;
    }
    if (err) {
        job_fail(job, err->message);
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
    job_set_state(job, JOB_PRECOPY, NULL);
    if (job->mode.kind == PP_MIG_POSTCOPY_INSTANT) {
        /* The source switches by itself right after setup. */
        job->switch_requested = true;
    } else if (job->mode.kind == PP_MIG_POSTCOPY) {
        job->switch_requested = true;
        pp_qmp_send(job->vm->qmp, "migrate-start-postcopy", NULL, QMP_MS,
                    on_start_postcopy, job);
    } else if (job->mode.kind == PP_MIG_POSTCOPY_AFTER) {
        job->postcopy_source = g_timeout_add(
            (guint)(job->mode.after_s * 1000), on_postcopy_timer, job);
    }
    job->poll_source = g_timeout_add(POLL_MS, on_poll_timer, job);
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
        job_fail(job, perr->message);
        return;
    }
    json_object *args = json_object_new_object();
    g_autofree char *uri = g_strdup_printf("tcp:%s:%s", job->to->addr, port);
    json_object_object_add(args, "uri", json_object_new_string(uri));
    pp_qmp_send(job->vm->qmp, "migrate", args, QMP_MS, on_migrate, job);
}

static void on_incoming(PpQmp *q, json_object *ret, const GError *err,
                        gpointer opaque)
{
    Job *job = opaque;

    if (!step_ok(job, err)) {
        return;
    }
    pp_qmp_send(job->dst_qmp, "query-migrate", NULL, QMP_MS,
                on_dst_listening, job);
}

static void on_setup_step(PpQmp *q, json_object *ret, const GError *err,
                          gpointer opaque)
{
    Job *job = opaque;

    if (err && !job->setup_failed && job_is_active(job)) {
        job->setup_failed = true;
        job_fail(job, err->message);
    }
    if (--job->setup_pending > 0 || job->setup_failed ||
        !job_is_active(job)) {
        return;
    }
    json_object *args = json_object_new_object();
    g_autofree char *uri = g_strdup_printf("tcp:%s:0", job->to->addr);
    json_object_object_add(args, "uri", json_object_new_string(uri));
    pp_qmp_send(job->dst_qmp, "migrate-incoming", args, QMP_MS, on_incoming,
                job);
}

/* Handing in a hot set is an optimisation: a refusal must not stop the
 * move (or every later one). */
static void on_hot_set_step(PpQmp *q, json_object *ret, const GError *err,
                            gpointer opaque)
{
    Job *job = opaque;

    if (err && job_is_active(job)) {
        pp_daemon_event(job->d, "warning", job->vm->spec->name,
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
    if (job->vm->has_instant && !dst) {
        want[n++] = (PpMigCap) { "x-postcopy-instant",
                                 job->mode.kind == PP_MIG_POSTCOPY_INSTANT };
    }
    if (job->vm->has_hot_first && !dst) {
        want[n++] = (PpMigCap) { "x-postcopy-hot-first",
                                 hot_first_used(job) };
    }
    return pp_mig_caps_args(want, n);
}

Job *job_start(PpDaemon *d, Vm *vm, Host *to, const PpMigMode *mode,
               const char *reason, GError **errp)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *mode_s = NULL;
    Job *job;

    if (vm->state != VM_RUNNING || vm->job) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "VM '%s' is not running or already moving",
                    vm->spec->name);
        return NULL;
    }
    if (to == vm->host) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "VM '%s' already runs on '%s'", vm->spec->name,
                    to->cfg->name);
        return NULL;
    }
    job = g_new0(Job, 1);
    job->d = d;
    job->vm = vm;
    job->from = vm->host;
    job->to = to;
    job->mode = *mode;
    if (mode->kind == PP_MIG_POSTCOPY_INSTANT && !vm->has_instant) {
        /* An upstream QEMU: the same move, in two commands. */
        job->mode.kind = PP_MIG_POSTCOPY;
        pp_daemon_event(d, "warning", vm->spec->name, "QEMU lacks "
                        "x-postcopy-instant; using migrate-start-postcopy");
    }
    mode_s = pp_mig_mode_str(&job->mode);
    job->reason = g_strdup(reason);
    job->state = JOB_STARTING;
    job->t_start = pp_wall_now();
    job->dst_vcpu_tids = g_array_new(FALSE, FALSE, sizeof(pid_t));
    pp_postcopy_stats_init(&job->pc);
    job->id = pp_store_job_create(d->store, job->t_start, vm->spec->name,
                                  job->from->cfg->name, to->cfg->name,
                                  mode_s, job_state_name(JOB_STARTING), &err);
    if (job->id < 0) {
        g_propagate_prefixed_error(errp, g_steal_pointer(&err),
                                   "cannot record the move: ");
        job_free(job);
        return NULL;
    }
    g_ptr_array_add(d->jobs, job);
    vm->job = job;
    vm->state = VM_MIGRATING;
    d->last_relocation = job->t_start;
    pp_daemon_event(d, "move-start", vm->spec->name,
                    "job %" G_GINT64_FORMAT ": %s -> %s (%s): %s", job->id,
                    job->from->cfg->name, to->cfg->name, mode_s,
                    reason ? reason : "manual");

    g_autofree char *tag = g_strdup_printf("job%" G_GINT64_FORMAT, job->id);
    job->dst_proc = pp_daemon_spawn(d, vm, to, true, tag, &err);
    if (!job->dst_proc) {
        job_fail(job, err->message);
        return job;
    }
    job->dst_qmp = pp_qmp_connect(pp_vm_qmp_path(job->dst_proc), QMP_MS,
                                  &err);
    if (!job->dst_qmp) {
        job_fail(job, err->message);
        return job;
    }
    pp_daemon_attach_qmp(d, vm, job->dst_qmp);
    pp_daemon_query_vcpus(d, job->dst_qmp, job->dst_vcpu_tids);
    job_set_state(job, JOB_SETUP, NULL);

    json_object *params = json_object_new_object();
    json_object_object_add(params, "downtime-limit",
                           json_object_new_int64((gint64)d->cfg->downtime_ms));
    json_object_object_add(params, "max-bandwidth", json_object_new_int64(
                               (gint64)d->cfg->max_bandwidth * 1048576));
    job->setup_pending = 3;
    if (hot_first_used(job)) {
        const PpConfig *cfg = d->cfg;
        json_object *dp = json_object_new_object();

        /* A VM that moved before hands in its hot set: no window. */
        json_object_object_add(params, "x-hot-track-ms", json_object_new_int64(
                                   vm->hot_set ? 0 : (gint64)cfg->hot_track_ms));
        json_object_object_add(params, "x-postcopy-send-buffer",
                               json_object_new_int64((gint64)cfg->send_buffer));
        json_object_object_add(params, "x-postcopy-pacing-rate",
                               json_object_new_int64((gint64)cfg->pacing_rate));
        json_object_object_add(dp, "x-postcopy-window",
                               json_object_new_int64((gint64)cfg->fault_window));
        job->setup_pending++;
        pp_qmp_send(job->dst_qmp, "migrate-set-parameters", dp, QMP_MS,
                    on_setup_step, job);
        if (vm->hot_set) {
            json_object *hs = json_object_new_object();

            json_object_object_add(hs, "blocks", json_object_get(vm->hot_set));
            job->setup_pending++;
            pp_qmp_send(vm->qmp, "x-set-hot-set", hs, QMP_MS,
                        on_hot_set_step, job);
        }
    }
    pp_qmp_send(vm->qmp, "migrate-set-capabilities", caps(job, false), QMP_MS,
                on_setup_step, job);
    pp_qmp_send(job->dst_qmp, "migrate-set-capabilities", caps(job, true),
                QMP_MS, on_setup_step, job);
    pp_qmp_send(vm->qmp, "migrate-set-parameters", params, QMP_MS,
                on_setup_step, job);
    return job;
}

json_object *job_to_json(const Job *job)
{
    json_object *o = json_object_new_object();
    g_autofree char *mode = pp_mig_mode_str(&job->mode);

    json_object_object_add(o, "id", json_object_new_int64(job->id));
    json_object_object_add(o, "vm", json_object_new_string(job->vm->spec->name));
    json_object_object_add(o, "from", json_object_new_string(job->from->cfg->name));
    json_object_object_add(o, "to", json_object_new_string(job->to->cfg->name));
    json_object_object_add(o, "mode", json_object_new_string(mode));
    json_object_object_add(o, "state",
                           json_object_new_string(job_state_name(job->state)));
    json_object_object_add(o, "reason", job->reason ?
                           json_object_new_string(job->reason) : NULL);
    json_object_object_add(o, "started", json_object_new_double(job->t_start));
    json_object_object_add(o, "ended", job->t_end > 0 ?
                           json_object_new_double(job->t_end) : NULL);
    json_object_object_add(o, "resumed", job->t_resume > 0 ?
                           json_object_new_double(job->t_resume) : NULL);
    json_object_object_add(o, "switchover-ms",
                           job->t_stop > 0 && job->t_resume > 0 ?
                           json_object_new_double((job->t_resume -
                                                   job->t_stop) * 1000) :
                           NULL);
    json_object_object_add(o, "bytes", json_object_new_int64(job->bytes));
    json_object_object_add(o, "postcopy-requests",
                           json_object_new_int64(job->postcopy_requests));
#define OPT_INT(key, v) json_object_object_add(o, key, (v) >= 0 ? \
                                               json_object_new_int64(v) : NULL)
    OPT_INT("remote-faults", job->pc.remote_faults);
    OPT_INT("fault-latency-p50-us", job->pc.fault_p50_us);
    OPT_INT("fault-latency-p99-us", job->pc.fault_p99_us);
    OPT_INT("hot-pages", job->pc.hot_pages);
    OPT_INT("hot-pushed-ms", job->pc.hot_pushed_ms);
    OPT_INT("hot-tracked-ms", job->pc.hot_tracked_ms);
#undef OPT_INT
    json_object_object_add(o, "error", job->error ?
                           json_object_new_string(job->error) : NULL);
    return o;
}

void job_free(Job *job)
{
    if (!job) {
        return;
    }
    job_stop_timers(job);
    pp_qmp_free(job->dst_qmp);
    pp_vm_free(job->dst_proc);
    g_array_unref(job->dst_vcpu_tids);
    g_free(job->reason);
    g_free(job->error);
    g_free(job);
}
