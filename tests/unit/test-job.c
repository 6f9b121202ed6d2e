/*
 * Unit tests: the migration job state machine (job.c), driven by a fake
 * driver that records what the job asks of it and reports what a test
 * says.  The rules under test: before the switch every failure or cancel
 * leaves the guest on the source; once the guest ran on the destination
 * the source is never resumed; every phase is stored.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "daemon.h"
#include "pp-error.h"

typedef struct FakeDriver {
    PpDriver parent;
    int starts, switches, aborts, releases, pauses, recovers;
    bool refuse_start;
    Job *last_abort;
} FakeDriver;

static FakeDriver fake;

static bool fake_migrate_start(PpDriver *drv, Job *job, GError **errp)
{
    fake.starts++;
    if (fake.refuse_start) {
        g_set_error(errp, PP_ERROR, PP_ERROR_FAILED, "no room on %s",
                    job->to->name);
        return false;
    }
    job->priv = &fake;
    return true;
}

static void fake_migrate_switch(PpDriver *drv, Job *job)
{
    fake.switches++;
}

static void fake_migrate_abort(PpDriver *drv, Job *job)
{
    fake.aborts++;
    fake.last_abort = job;
}

static void fake_migrate_pause(PpDriver *drv, Job *job)
{
    fake.pauses++;
}

static void fake_migrate_recover(PpDriver *drv, Job *job)
{
    fake.recovers++;
}

static void fake_job_release(PpDriver *drv, Job *job)
{
    fake.releases++;
    job->priv = NULL;
}

static void fake_vm_describe(PpDriver *drv, Vm *vm, json_object *o) {}
static void fake_vm_release(PpDriver *drv, Vm *vm) {}
static void fake_close(PpDriver *drv, bool stop_vms) {}

static const PpDriverOps fake_ops = {
    .name = "fake",
    .migrate_start = fake_migrate_start,
    .migrate_switch = fake_migrate_switch,
    .migrate_abort = fake_migrate_abort,
    .migrate_pause = fake_migrate_pause,
    .migrate_recover = fake_migrate_recover,
    .job_release = fake_job_release,
    .vm_describe = fake_vm_describe,
    .vm_release = fake_vm_release,
    .close = fake_close,
};

static const char *cfg_text =
    "[consolidator]\nname = tj\nstate_dir = /nonexistent\n"
    "[host pm0]\ncpus = 0\n[host pm1]\ncpus = 1\n";

typedef struct Fixture {
    PpDaemon *d;
    Vm *vm;
    Host *pm0, *pm1;
} Fixture;

static Host *add_host(PpDaemon *d, const char *name)
{
    Host *h = g_new0(Host, 1);

    h->name = g_strdup(name);
    h->where = g_strdup("0");
    h->ncpus = 1;
    h->mem_used_mib = h->mem_total_mib = NAN;
    g_ptr_array_add(d->hosts, h);
    return h;
}

static void host_free(gpointer p)
{
    Host *h = p;

    g_free(h->name);
    g_free(h->where);
    g_free(h);
}

static void vm_free(gpointer p)
{
    Vm *vm = p;

    json_object_put(vm->hot_set);
    g_free(vm->name);
    g_free(vm);
}

static int setup(void **state)
{
    Fixture *f = g_new0(Fixture, 1);
    g_autoptr(GError) err = NULL;
    PpDaemon *d = g_new0(PpDaemon, 1);

    memset(&fake, 0, sizeof(fake));
    fake.parent.ops = &fake_ops;
    fake.parent.d = d;
    d->drv = &fake.parent;
    d->cfg = pp_config_parse(cfg_text, "/tmp/tj.ini", &err);
    assert_non_null(d->cfg);
    d->store = pp_store_open(":memory:", &err);
    assert_non_null(d->store);
    d->hosts = g_ptr_array_new_with_free_func(host_free);
    d->vms = g_ptr_array_new_with_free_func(vm_free);
    d->jobs = g_ptr_array_new_with_free_func((GDestroyNotify)job_free);
    f->d = d;
    f->pm0 = add_host(d, "pm0");
    f->pm1 = add_host(d, "pm1");
    f->vm = pp_daemon_add_vm(d, "vm0", f->pm0, 512, 1, NULL);
    f->vm->has_instant = true;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    Fixture *f = *state;
    PpDaemon *d = f->d;

    g_ptr_array_free(d->jobs, TRUE);
    g_ptr_array_free(d->vms, TRUE);
    g_ptr_array_free(d->hosts, TRUE);
    pp_store_close(d->store);
    pp_config_free(d->cfg);
    g_free(d);
    g_free(f);
    return 0;
}

static Job *start(Fixture *f, const char *mode_s)
{
    g_autoptr(GError) err = NULL;
    PpMigMode mode;
    Job *job;

    assert_true(pp_mig_mode_parse(mode_s, &mode, &err));
    job = job_start(f->d, f->vm, f->pm1, &mode, "test", &err);
    if (!job) {
        fail_msg("%s", err->message);
    }
    return job;
}

/* The phase the store holds for @job. */
static char *stored_phase(Fixture *f, Job *job)
{
    static const char *const none[] = { NULL };
    g_autoptr(GPtrArray) rows = pp_store_jobs(f->d->store, none, NULL);
    char *phase = NULL;

    for (guint i = 0; rows && i < rows->len; i++) {
        PpJobRow *r = rows->pdata[i];
        if (r->id == job->id) {
            phase = g_strdup(r->phase);
        }
    }
    return phase;
}

static void test_precopy_done(void **state)
{
    Fixture *f = *state;
    Job *job = start(f, "precopy");

    assert_int_equal(fake.starts, 1);
    assert_int_equal(job->state, JOB_STARTING);
    assert_int_equal(f->vm->state, VM_MIGRATING);
    assert_ptr_equal(f->vm->job, job);
    job_migrating(job);
    assert_int_equal(job->state, JOB_PRECOPY);
    assert_int_equal(fake.switches, 0);
    assert_false(job->switch_requested);
    job_source_done(job);
    assert_int_equal(job->state, JOB_COMPLETING);
    job_completed(job);
    assert_int_equal(job->state, JOB_DONE);
    assert_ptr_equal(f->vm->host, f->pm1);
    assert_int_equal(f->vm->state, VM_RUNNING);
    assert_null(f->vm->job);
    assert_int_equal(fake.releases, 1);
    g_autofree char *phase = stored_phase(f, job);
    assert_string_equal(phase, "done");
    /* Late reports of a finished job change nothing. */
    job_failed(job, "late");
    job_switched(job);
    assert_int_equal(job->state, JOB_DONE);
    assert_int_equal(fake.aborts, 0);
}

static void test_postcopy_switches_once(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) err = NULL;
    Job *job = start(f, "postcopy");

    job_migrating(job);
    assert_int_equal(fake.switches, 1);
    assert_true(job->switch_requested);
    /* Asked to switch: a cancel can no longer promise the source. */
    assert_false(job_cancel(job, &err));
    assert_non_null(strstr(err->message, "cannot go back"));
    job_switched(job);
    assert_int_equal(job->state, JOB_POSTCOPY);
    assert_ptr_equal(vm_guest_host(f->vm), f->pm1);
    job_completed(job);
    assert_int_equal(job->state, JOB_DONE);
    assert_int_equal(fake.switches, 1);
}

static void test_instant_needs_no_switch(void **state)
{
    Fixture *f = *state;
    Job *job = start(f, "postcopy-instant");

    job_migrating(job);
    assert_int_equal(fake.switches, 0);
    assert_true(job->switch_requested);
    assert_int_equal(job->mode.kind, PP_MIG_POSTCOPY_INSTANT);
}

static void test_instant_falls_back(void **state)
{
    Fixture *f = *state;
    Job *job;

    f->vm->has_instant = false;
    job = start(f, "postcopy-instant");
    assert_int_equal(job->mode.kind, PP_MIG_POSTCOPY);
    job_migrating(job);
    assert_int_equal(fake.switches, 1);
}

static void test_postcopy_after_timer(void **state)
{
    Fixture *f = *state;
    Job *job = start(f, "postcopy-after=0.02");
    gint64 deadline = g_get_monotonic_time() + 2 * G_USEC_PER_SEC;

    job_migrating(job);
    assert_int_equal(fake.switches, 0);
    assert_false(job->switch_requested);
    while (fake.switches == 0 && g_get_monotonic_time() < deadline) {
        g_main_context_iteration(NULL, TRUE);
    }
    assert_int_equal(fake.switches, 1);
    assert_true(job->switch_requested);
}

static void test_fail_before_switch(void **state)
{
    Fixture *f = *state;
    Job *job = start(f, "precopy");

    job_migrating(job);
    job_failed(job, "link down");
    /* The driver is asked to stop; the job waits for its answer. */
    assert_int_equal(fake.aborts, 1);
    assert_true(job->aborting);
    assert_int_equal(job->state, JOB_PRECOPY);
    /* A second failure while aborting does not abort twice. */
    job_failed(job, "again");
    assert_int_equal(fake.aborts, 1);
    job_aborted(job, true);
    assert_int_equal(job->state, JOB_FAILED);
    assert_string_equal(job->error, "link down");
    assert_ptr_equal(f->vm->host, f->pm0);
    assert_int_equal(f->vm->state, VM_RUNNING);
    assert_null(f->vm->job);
    assert_int_equal(fake.releases, 1);
    g_autofree char *phase = stored_phase(f, job);
    assert_string_equal(phase, "failed");
}

/* The operator pauses a post-copy and recovers it: no automatic attempt
 * in between, and the job goes on to the end. */
static void test_pause_and_recover(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) err = NULL;
    Job *job = start(f, "postcopy");

    job_migrating(job);
    /* Before the switch there is no post-copy to pause. */
    assert_false(job_pause(job, &err));
    g_clear_error(&err);
    job_switched(job);
    assert_false(job_recover(job, &err));
    assert_non_null(strstr(err->message, "not paused"));
    g_clear_error(&err);
    assert_true(job_pause(job, &err));
    assert_int_equal(fake.pauses, 1);
    job_paused(job, "source: post-copy paused");
    /* The other side's report of the same pause counts once. */
    job_paused(job, "destination: post-copy paused");
    assert_int_equal(job->state, JOB_PAUSED);
    assert_int_equal(job->pauses, 1);
    g_autofree char *phase = stored_phase(f, job);
    assert_string_equal(phase, "paused");
    /* Paused on request: nothing recovers it behind the operator. */
    assert_int_equal(job->recover_source, 0);
    assert_false(job_cancel(job, &err));
    g_clear_error(&err);
    assert_true(job_recover(job, &err));
    assert_int_equal(fake.recovers, 1);
    assert_true(job->recovering);
    assert_false(job_recover(job, &err));
    assert_non_null(strstr(err->message, "recovering already"));
    job_recovered(job);
    assert_int_equal(job->state, JOB_POSTCOPY);
    assert_int_equal(job->recoveries, 1);
    assert_false(job->recovering);
    job_source_done(job);
    job_completed(job);
    assert_int_equal(job->state, JOB_DONE);
    assert_ptr_equal(f->vm->host, f->pm1);
    json_object *o = job_to_json(job);
    json_object *v;
    assert_true(json_object_object_get_ex(o, "pauses", &v));
    assert_int_equal(json_object_get_int64(v), 1);
    assert_true(json_object_object_get_ex(o, "recoveries", &v));
    assert_int_equal(json_object_get_int64(v), 1);
    json_object_put(o);
}

static void wait_recovers(int n, double max_s)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)(max_s * 1e6);

    while (fake.recovers < n && g_get_monotonic_time() < deadline) {
        g_main_context_iteration(NULL, FALSE);
        g_usleep(1000);
    }
}

/* A channel that breaks by itself is recovered automatically, attempt
 * after attempt, until recover_timeout; then it waits for the operator. */
static void test_auto_recover_until_deadline(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) err = NULL;
    Job *job = start(f, "postcopy");

    f->d->cfg->recover_timeout_s = 2;
    job_migrating(job);
    job_switched(job);
    job_paused(job, "source: post-copy paused");
    assert_int_equal(job->state, JOB_PAUSED);
    assert_int_not_equal(job->recover_source, 0);
    assert_int_equal(fake.recovers, 0);
    wait_recovers(1, 3);
    assert_int_equal(fake.recovers, 1);     /* after 1 s */
    job_paused(job, "connection refused");  /* the attempt failed */
    assert_false(job->recovering);
    assert_int_equal(job->state, JOB_PAUSED);
    wait_recovers(2, 3);
    assert_int_equal(fake.recovers, 2);     /* the deadline's last try */
    job_paused(job, "connection refused");
    /* Past recover_timeout: no more attempts, the operator decides. */
    assert_int_equal(job->recover_source, 0);
    assert_true(job_recover(job, &err));
    assert_int_equal(fake.recovers, 3);
    job_recovered(job);
    assert_int_equal(job->state, JOB_POSTCOPY);
    /* A QEMU dying while paused leaves nothing to recover: broken. */
    job_paused(job, "again");
    job_failed(job, "destination QEMU went away");
    assert_int_equal(job->state, JOB_BROKEN);
    assert_int_equal(f->vm->state, VM_BROKEN);
    assert_int_equal(job->recover_source, 0);
}

static void test_fail_after_switch_is_broken(void **state)
{
    Fixture *f = *state;
    Job *job = start(f, "postcopy");

    job_migrating(job);
    job_switched(job);
    job_failed(job, "source QEMU went away");
    /* No abort: the source must not run the guest again. */
    assert_int_equal(fake.aborts, 0);
    assert_int_equal(job->state, JOB_BROKEN);
    assert_int_equal(f->vm->state, VM_BROKEN);
    /* Both sides are kept: the job stays with the VM, unreleased. */
    assert_ptr_equal(f->vm->job, job);
    assert_int_equal(fake.releases, 0);
}

static void test_abort_after_requested_switch(void **state)
{
    Fixture *f = *state;
    Job *job = start(f, "postcopy");

    job_migrating(job);
    /* QEMU may have switched without our having seen it: the driver
     * finds out, and says the guest is not on the source. */
    job_failed(job, "destination QEMU went away");
    assert_int_equal(fake.aborts, 1);
    job_aborted(job, false);
    assert_int_equal(job->state, JOB_BROKEN);
    assert_int_equal(f->vm->state, VM_BROKEN);
}

static void test_cancel(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) err = NULL;
    Job *job = start(f, "precopy");

    job_migrating(job);
    assert_true(job_cancel(job, &err));
    assert_int_equal(fake.aborts, 1);
    assert_false(job_cancel(job, &err));
    assert_non_null(strstr(err->message, "already being stopped"));
    g_clear_error(&err);
    job_aborted(job, true);
    assert_int_equal(job->state, JOB_CANCELLED);
    assert_false(job_cancel(job, &err));
    assert_non_null(strstr(err->message, "is already cancelled"));
    assert_int_equal(f->vm->state, VM_RUNNING);
}

static void test_refused_start(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) err = NULL;
    Job *job;

    fake.refuse_start = true;
    job = start(f, "postcopy");
    assert_int_equal(job->state, JOB_FAILED);
    assert_string_equal(job->error, "no room on pm1");
    assert_int_equal(f->vm->state, VM_RUNNING);
    assert_null(f->vm->job);
    /* The VM can move again. */
    fake.refuse_start = false;
    job = start(f, "postcopy");
    assert_int_equal(job->state, JOB_STARTING);
}

static void test_bad_requests(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) err = NULL;
    PpMigMode mode = { PP_MIG_PRECOPY, 0 };

    assert_null(job_start(f->d, f->vm, f->pm0, &mode, NULL, &err));
    assert_non_null(strstr(err->message, "already runs on 'pm0'"));
    g_clear_error(&err);
    start(f, "precopy");
    assert_null(job_start(f->d, f->vm, f->pm1, &mode, NULL, &err));
    assert_non_null(strstr(err->message, "already moving"));
    assert_int_equal(fake.starts, 1);
}

static void test_metrics_text(void **state)
{
    Fixture *f = *state;
    Job *job = start(f, "precopy");
    g_autofree char *text = NULL;
    PpVmStats st;

    job_migrating(job);
    job->t_stop = 100.0;
    job->t_resume = 100.25;
    job_completed(job);
    f->vm->host = f->pm0; /* as if it had come back */
    job = start(f, "postcopy");
    job_failed(job, "link down");
    job_aborted(job, true);
    start(f, "postcopy");
    pp_vm_stats_init(&st);
    st.cpu = 50;
    st.net_rx_bps = 1000;
    pp_daemon_sample_vm(f->d, f->vm, 1, &st);
    f->pm0->up = true;
    text = pp_metrics_text(f->d);
    assert_non_null(strstr(text, "postpack_info{instance=\"tj\","
                           "driver=\"fake\",policy=\"threshold\"} 1\n"));
    assert_non_null(strstr(text, "postpack_moves_total{mode=\"precopy\","
                           "outcome=\"done\"} 1\n"));
    assert_non_null(strstr(text, "postpack_moves_total{mode=\"postcopy\","
                           "outcome=\"failed\"} 1\n"));
    assert_non_null(strstr(text, "postpack_moves_in_flight 1\n"));
    assert_non_null(strstr(text, "postpack_move_switchover_seconds_sum 0.25\n"
                           "postpack_move_switchover_seconds_count 1\n"));
    assert_non_null(strstr(text, "postpack_vm_state{vm=\"vm0\",state=\""
                           "migrating\"} 1\n"));
    assert_non_null(strstr(text, "postpack_vm_cpu_ratio{vm=\"vm0\","
                           "host=\"pm0\"} 0.5\n"));
    assert_non_null(strstr(text, "postpack_vm_network_receive_bytes_per_second"
                           "{vm=\"vm0\",host=\"pm0\"} 1000\n"));
    assert_non_null(strstr(text, "postpack_host_up{host=\"pm0\"} 1\n"));
    assert_non_null(strstr(text, "postpack_host_up{host=\"pm1\"} 0\n"));
    /* What was not measured is absent, not 0. */
    assert_null(strstr(text, "postpack_vm_disk_read_bytes_per_second{"));
    assert_null(strstr(text, "postpack_host_memory_used_bytes{"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_precopy_done),
        T(test_postcopy_switches_once),
        T(test_instant_needs_no_switch),
        T(test_instant_falls_back),
        T(test_postcopy_after_timer),
        T(test_fail_before_switch),
        T(test_fail_after_switch_is_broken),
        T(test_abort_after_requested_switch),
        T(test_pause_and_recover),
        T(test_auto_recover_until_deadline),
        T(test_cancel),
        T(test_refused_start),
        T(test_bad_requests),
        T(test_metrics_text),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
