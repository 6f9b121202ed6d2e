/*
 * Migration jobs: one state machine per move of a VM (see daemon.h).
 *
 *   STARTING -> PRECOPY -> [POSTCOPY ->] COMPLETING -> DONE
 *        \__________\___________________________/-> FAILED
 *        \__________\___________________________/-> CANCELLED
 *                    POSTCOPY/COMPLETING <-> PAUSED
 *                    POSTCOPY/COMPLETING/PAUSED -> BROKEN
 *
 * The driver carries the migration out and reports its steps (driver.h);
 * this file decides what they mean.  Before the switch (STARTING..PRECOPY)
 * any failure or a cancel has the driver drop the destination and leave
 * the guest running on the source: FAILED and CANCELLED lose no VM.  Once
 * the guest runs on the destination the source holds pages only it has:
 * the source is never resumed.  A post-copy channel that goes down with
 * both QEMUs alive is PAUSED: the job has the driver recover it on a new
 * channel, again with back-off until recover_timeout, or when the
 * operator asks.  A failure that leaves no way to recover (a QEMU died)
 * is BROKEN (what is left is kept).  Every transition goes through
 * job_set_state(), which checks it, stores the phase in the database and
 * records an event.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "daemon.h"
#include "pp-error.h"

#include <math.h>
#include <string.h>


static const char *const state_names[JOB__MAX] = {
    [JOB_STARTING] = "starting",
    [JOB_PRECOPY] = "precopy",
    [JOB_POSTCOPY] = "postcopy",
    [JOB_COMPLETING] = "completing",
    [JOB_DONE] = "done",
    [JOB_FAILED] = "failed",
    [JOB_CANCELLED] = "cancelled",
    [JOB_BROKEN] = "broken",
    [JOB_PAUSED] = "paused",
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
    [JOB_STARTING] = 1u << JOB_PRECOPY | 1u << JOB_FAILED |
                     1u << JOB_CANCELLED,
    /* PRECOPY -> BROKEN: QEMU switched before we saw it. */
    [JOB_PRECOPY] = 1u << JOB_POSTCOPY | 1u << JOB_COMPLETING |
                    1u << JOB_FAILED | 1u << JOB_CANCELLED | 1u << JOB_BROKEN |
                    1u << JOB_PAUSED,
    [JOB_POSTCOPY] = 1u << JOB_COMPLETING | 1u << JOB_BROKEN |
                     1u << JOB_PAUSED,
    /* COMPLETING -> FAILED: a converged pre-copy whose destination failed;
     * the paused source is resumed. */
    [JOB_COMPLETING] = 1u << JOB_DONE | 1u << JOB_BROKEN | 1u << JOB_FAILED |
                       1u << JOB_PAUSED,
    /* PAUSED -> POSTCOPY: recovered. */
    [JOB_PAUSED] = 1u << JOB_POSTCOPY | 1u << JOB_BROKEN,
};

static void job_set_state(Job *job, JobState to, const char *detail)
{
    PpDaemon *d = job->d;
    g_autoptr(GError) err = NULL;

    if (!(allowed[job->state] & (1u << to))) {
        /* A bug, not an input error: keep the job where it is. */
        pp_daemon_event(d, "bug", job->vm->name,
                        "job %" G_GINT64_FORMAT ": refused transition %s -> %s",
                        job->id, job_state_name(job->state),
                        job_state_name(to));
        return;
    }
    job->state = to;
    if (!pp_store_job_update(d->store, job->id, pp_wall_now(),
                             job_state_name(to), detail, &err)) {
        pp_daemon_event(d, "warning", job->vm->name,
                        "cannot record job phase: %s", err->message);
    }
    pp_daemon_event(d, "move-phase", job->vm->name,
                    "job %" G_GINT64_FORMAT " %s -> %s: %s%s%s", job->id,
                    job->from->name, job->to->name,
                    job_state_name(to), detail ? ": " : "",
                    detail ? detail : "");
}

static void job_stop_timers(Job *job)
{
    if (job->postcopy_source) {
        g_source_remove(job->postcopy_source);
        job->postcopy_source = 0;
    }
    if (job->recover_source) {
        g_source_remove(job->recover_source);
        job->recover_source = 0;
    }
}

/* Still driving the migration (not over, not being aborted). */
static bool job_live(const Job *job)
{
    return job_is_active(job) && !job->aborting;
}

/* The job is over: the VM is free for the next one. */
static void job_end(Job *job)
{
    job_stop_timers(job);
    if (job->vm->job == job) {
        job->vm->job = NULL;
    }
    job->d->last_relocation = pp_wall_now();
    job->d->drv->ops->job_release(job->d->drv, job);
}

/* After the switch: the source must never run the guest again. */
static void job_broken(Job *job, const char *why)
{
    Vm *vm = job->vm;

    job_set_state(job, JOB_BROKEN, why);
    vm->state = VM_BROKEN;
    pp_daemon_event(job->d, "alert", vm->name,
                    "move failed after the guest switched hosts (%s) with "
                    "no way to recover it; the source is not resumed and "
                    "what is left of both sides is kept", why);
    /* The VM keeps its job: it is the record of where the guest is. */
    job_stop_timers(job);
    job->d->last_relocation = pp_wall_now();
}

void job_aborted(Job *job, bool guest_on_source)
{
    Vm *vm = job->vm;

    if (!job->aborting) {
        return;
    }
    job->aborting = false;
    if (!guest_on_source) {
        job_broken(job, job->error);
        return;
    }
    job_set_state(job, job->abort_end, job->error);
    if (vm->state == VM_MIGRATING) {
        vm->state = VM_RUNNING;
    }
    job_end(job);
}

/*
 * End a job that did not complete, in @end (FAILED or CANCELLED) when the
 * guest can stay on the source, else BROKEN.  The driver stops the
 * migration and says where the guest is; once post-copy was asked for,
 * QEMU may have switched before anyone saw it, and only the driver can
 * find out.
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
        return;
    }
    job->aborting = true;
    job->abort_end = end;
    job->d->drv->ops->migrate_abort(job->d->drv, job);
}

void job_failed(Job *job, const char *why)
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

void job_completed(Job *job)
{
    Vm *vm = job->vm;
    g_autofree char *detail = NULL;

    if (!job_live(job)) {
        return;
    }
    if (job->state == JOB_STARTING) {
        /* over before the driver saw it run */
        job_set_state(job, JOB_PRECOPY, NULL);
    }
    if (job->state == JOB_PAUSED) {
        /* a recovery carried it to the end before it was seen running */
        job_recovered(job);
    }
    if (job->state != JOB_COMPLETING) {
        job_source_done(job);
    }
    job->t_end = pp_wall_now();
    vm->host = job->to;
    vm->state = VM_RUNNING;
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
    job_end(job);
}

void job_switched(Job *job)
{
    if (!job_live(job)) {
        return;
    }
    job->switched = true;
    job->switch_requested = true;
    if (job->state == JOB_STARTING) {
        job_set_state(job, JOB_PRECOPY, NULL);
    }
    if (job->state == JOB_PRECOPY) {
        job_set_state(job, JOB_POSTCOPY, "guest runs on the destination");
    }
}

void job_source_done(Job *job)
{
    if (!job_live(job)) {
        return;
    }
    if (job->state == JOB_PRECOPY || job->state == JOB_POSTCOPY) {
        job_set_state(job, JOB_COMPLETING, "source sent everything");
    }
}

/* ---- post-copy recovery ---- */

#define RECOVER_FIRST_S 1.0
#define RECOVER_MAX_S 30.0

static gboolean on_recover_timer(gpointer opaque);

/* Automatic attempts start over: none pending, none made, a fresh
 * recover_timeout from now. */
static void job_restart_recovery(Job *job)
{
    if (job->recover_source) {
        g_source_remove(job->recover_source);
        job->recover_source = 0;
    }
    job->recover_attempts = 0;
    job->recover_until = pp_wall_now() +
                         (double)job->d->cfg->recover_timeout_s;
}

/* Ask the driver for one recovery attempt now. */
static void job_try_recover(Job *job)
{
    job->recovering = true;
    job->recover_attempts++;
    pp_daemon_event(job->d, "move-recover", job->vm->name,
                    "job %" G_GINT64_FORMAT ": recovering post-copy on a new "
                    "channel (attempt %u)", job->id, job->recover_attempts);
    job->d->drv->ops->migrate_recover(job->d->drv, job);
}

/* The next automatic attempt, with back-off; none past the deadline. */
static void job_schedule_recover(Job *job)
{
    guint64 limit = job->d->cfg->recover_timeout_s;
    double delay, left;

    if (job->operator_paused || job->recover_source || limit == 0) {
        return;
    }
    left = job->recover_until - pp_wall_now();
    if (left <= 0) {
        pp_daemon_event(job->d, "alert", job->vm->name,
                        "job %" G_GINT64_FORMAT ": post-copy still paused "
                        "after %u recovery attempts in %" G_GUINT64_FORMAT
                        " s; the guest waits for `consolidator recover %"
                        G_GINT64_FORMAT "`", job->id, job->recover_attempts,
                        limit, job->id);
        return;
    }
    delay = RECOVER_FIRST_S;
    for (guint i = 1; i < job->recover_attempts && delay < RECOVER_MAX_S;
         i++) {
        delay *= 2;
    }
    delay = MIN(MIN(delay, RECOVER_MAX_S), left);
    job->recover_source = g_timeout_add((guint)(delay * 1000),
                                        on_recover_timer, job);
}

static gboolean on_recover_timer(gpointer opaque)
{
    Job *job = opaque;

    job->recover_source = 0;
    if (job->state == JOB_PAUSED && job_live(job) && !job->recovering) {
        job_try_recover(job);
    }
    return G_SOURCE_REMOVE;
}

void job_paused(Job *job, const char *why)
{
    if (!job_live(job)) {
        return;
    }
    job->switched = true;
    job->switch_requested = true;
    if (job->state == JOB_PAUSED) {
        if (job->recovering) {
            /* An attempt failed; both sides still wait. */
            job->recovering = false;
            pp_daemon_event(job->d, "warning", job->vm->name,
                            "job %" G_GINT64_FORMAT ": recovery attempt %u "
                            "failed: %s", job->id, job->recover_attempts,
                            why);
            job_schedule_recover(job);
        }
        return;
    }
    if (job->state == JOB_STARTING) {
        job_set_state(job, JOB_PRECOPY, NULL);
    }
    job->pauses++;
    job->t_paused = pp_wall_now();
    job_restart_recovery(job);
    job_set_state(job, JOB_PAUSED, why);
    if (!job->operator_paused) {
        job_schedule_recover(job);
    }
}

void job_recovered(Job *job)
{
    if (!job_live(job) || job->state != JOB_PAUSED) {
        return;
    }
    g_autofree char *detail = g_strdup_printf(
        "recovered after %.1f s (attempt %u)", pp_wall_now() - job->t_paused,
        job->recover_attempts);

    job->recovering = false;
    job->operator_paused = false;
    job->recoveries++;
    if (job->recover_source) {
        g_source_remove(job->recover_source);
        job->recover_source = 0;
    }
    job_set_state(job, JOB_POSTCOPY, detail);
}

bool job_pause(Job *job, GError **errp)
{
    if (!job_live(job) ||
        (job->state != JOB_POSTCOPY && job->state != JOB_COMPLETING)) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "job %" G_GINT64_FORMAT " is %s: only a post-copy "
                    "(postcopy, completing) can be paused", job->id,
                    job_state_name(job->state));
        return false;
    }
    job->operator_paused = true;
    pp_daemon_event(job->d, "move-pause", job->vm->name,
                    "job %" G_GINT64_FORMAT ": pausing post-copy on request",
                    job->id);
    job->d->drv->ops->migrate_pause(job->d->drv, job);
    return true;
}

bool job_recover(Job *job, GError **errp)
{
    if (!job_live(job) || job->state != JOB_PAUSED) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "job %" G_GINT64_FORMAT " is %s, not paused", job->id,
                    job_state_name(job->state));
        return false;
    }
    if (job->recovering) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "job %" G_GINT64_FORMAT " is recovering already",
                    job->id);
        return false;
    }
    /* The operator's request: automatic attempts resume from here. */
    job->operator_paused = false;
    job_restart_recovery(job);
    job_try_recover(job);
    return true;
}

static gboolean on_postcopy_timer(gpointer opaque)
{
    Job *job = opaque;

    job->postcopy_source = 0;
    if (job->state == JOB_PRECOPY && job_live(job)) {
        job->switch_requested = true;
        job->d->drv->ops->migrate_switch(job->d->drv, job);
    }
    return G_SOURCE_REMOVE;
}

void job_migrating(Job *job)
{
    if (!job_live(job) || job->state != JOB_STARTING) {
        return;
    }
    job_set_state(job, JOB_PRECOPY, NULL);
    if (job->mode.kind == PP_MIG_POSTCOPY_INSTANT) {
        /* The source switches by itself right after setup. */
        job->switch_requested = true;
    } else if (job->mode.kind == PP_MIG_POSTCOPY) {
        job->switch_requested = true;
        job->d->drv->ops->migrate_switch(job->d->drv, job);
    } else if (job->mode.kind == PP_MIG_POSTCOPY_AFTER) {
        job->postcopy_source = g_timeout_add(
            (guint)(job->mode.after_s * 1000), on_postcopy_timer, job);
    }
}

Job *job_start(PpDaemon *d, Vm *vm, Host *to, const PpMigMode *mode,
               const char *reason, GError **errp)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *mode_s = NULL;
    Job *job;

    if (vm->state != VM_RUNNING || vm->job) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "VM '%s' is not running or already moving", vm->name);
        return NULL;
    }
    if (to == vm->host) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "VM '%s' already runs on '%s'", vm->name, to->name);
        return NULL;
    }
    if (to->power != HOST_ON) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "host '%s' is %s: it takes no VM until it is on "
                    "('consolidator power %s on')", to->name,
                    pp_host_power_name(to->power), to->name);
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
        pp_daemon_event(d, "warning", vm->name, "QEMU lacks "
                        "x-postcopy-instant; using migrate-start-postcopy");
    }
    mode_s = pp_mig_mode_str(&job->mode);
    job->reason = g_strdup(reason);
    job->state = JOB_STARTING;
    job->t_start = pp_wall_now();
    pp_postcopy_stats_init(&job->pc);
    job->id = pp_store_job_create(d->store, job->t_start, vm->name,
                                  job->from->name, to->name, mode_s,
                                  job_state_name(JOB_STARTING), &err);
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
    pp_daemon_event(d, "move-start", vm->name,
                    "job %" G_GINT64_FORMAT ": %s -> %s (%s): %s", job->id,
                    job->from->name, to->name, mode_s,
                    reason ? reason : "manual");
    if (!d->drv->ops->migrate_start(d->drv, job, &err)) {
        /* Nothing was started: the guest stays where it is. */
        g_free(job->error);
        job->error = g_strdup(err->message);
        job->t_end = pp_wall_now();
        job_set_state(job, JOB_FAILED, job->error);
        vm->state = VM_RUNNING;
        job_end(job);
    }
    return job;
}

bool job_hot_first(const Job *job)
{
    return job->vm->has_hot_first && job->d->cfg->hot_first &&
           job->mode.kind != PP_MIG_PRECOPY;
}

size_t job_our_caps(const Job *job, PpMigCap *caps)
{
    size_t n = 0;

    if (job->vm->has_instant) {
        caps[n++] = (PpMigCap) { "x-postcopy-instant",
                                 job->mode.kind == PP_MIG_POSTCOPY_INSTANT };
    }
    if (job->vm->has_hot_first) {
        caps[n++] = (PpMigCap) { "x-postcopy-hot-first", job_hot_first(job) };
    }
    return n;
}

void job_our_source_params(const Job *job, json_object *params)
{
    const PpConfig *cfg = job->d->cfg;

    /* A VM that moved before hands in its hot set: no window. */
    json_object_object_add(params, "x-hot-track-ms", json_object_new_int64(
                               job->vm->hot_set ? 0 :
                               (gint64)cfg->hot_track_ms));
    json_object_object_add(params, "x-postcopy-send-buffer",
                           json_object_new_int64((gint64)cfg->send_buffer));
    json_object_object_add(params, "x-postcopy-pacing-rate",
                           json_object_new_int64((gint64)cfg->pacing_rate));
}

Job *job_adopt(PpDaemon *d, const PpJobRow *row, Vm *vm, Host *from,
               Host *to, JobState state, bool switched, void *priv)
{
    Job *job = g_new0(Job, 1);

    job->d = d;
    job->id = row->id;
    job->vm = vm;
    job->from = from;
    job->to = to;
    if (!pp_mig_mode_parse(row->mode, &job->mode, NULL)) {
        job->mode = (PpMigMode){ PP_MIG_POSTCOPY, 0 };
    }
    job->reason = g_strdup("adopted from a previous run");
    job->state = state;
    job->t_start = row->created;
    job->switched = switched;
    job->switch_requested = switched || state >= JOB_POSTCOPY;
    pp_postcopy_stats_init(&job->pc);
    job->priv = priv;
    g_ptr_array_add(d->jobs, job);
    vm->job = job;
    vm->state = VM_MIGRATING;
    pp_store_job_update(d->store, job->id, pp_wall_now(),
                        job_state_name(state), "adopted after a restart",
                        NULL);
    pp_daemon_event(d, "move-adopted", vm->name,
                    "job %" G_GINT64_FORMAT " %s -> %s (%s) carried on in "
                    "phase %s (was %s)", job->id, from->name, to->name,
                    row->mode, job_state_name(state), row->phase);
    if (state == JOB_PAUSED) {
        /* Found waiting for a recovery: the same as a pause seen live. */
        job->pauses = 1;
        job->t_paused = pp_wall_now();
        job_restart_recovery(job);
        job_schedule_recover(job);
    }
    return job;
}

json_object *job_to_json(const Job *job)
{
    json_object *o = json_object_new_object();
    g_autofree char *mode = pp_mig_mode_str(&job->mode);

    json_object_object_add(o, "id", json_object_new_int64(job->id));
    json_object_object_add(o, "vm", json_object_new_string(job->vm->name));
    json_object_object_add(o, "from", json_object_new_string(job->from->name));
    json_object_object_add(o, "to", json_object_new_string(job->to->name));
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
    json_object_object_add(o, "pauses", json_object_new_int64(job->pauses));
    json_object_object_add(o, "recoveries",
                           json_object_new_int64(job->recoveries));
    json_object_object_add(o, "recovering",
                           json_object_new_boolean(job->recovering));
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
    if (job->priv) {
        job->d->drv->ops->job_release(job->d->drv, job);
    }
    g_free(job->reason);
    g_free(job->error);
    g_free(job);
}
