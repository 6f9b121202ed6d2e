/*
 * libFuzzer harness: the control protocol (control.c), one request line
 * per input, on a daemon with two hosts, two VMs and a driver that
 * accepts every move and does nothing.  The first byte picks the socket
 * (odd: the read-only query socket).  Jobs a request starts are dropped
 * after each input; the daemon is rebuilt every few thousand inputs so
 * that its job table and database stay small.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "daemon.h"
#include "pp-error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool nop_start(PpDriver *drv, Job *job, GError **errp)
{
    job->priv = drv;
    return true;
}

static void nop_job(PpDriver *drv, Job *job) {}

static void nop_release(PpDriver *drv, Job *job)
{
    job->priv = NULL;
}

static void nop_describe(PpDriver *drv, Vm *vm, json_object *o) {}
static void nop_vm(PpDriver *drv, Vm *vm) {}

static const PpDriverOps nop_ops = {
    .name = "fuzz",
    .owns_vms = true,
    .migrate_start = nop_start,
    .migrate_switch = nop_job,
    .migrate_abort = nop_job,
    .migrate_pause = nop_job,
    .migrate_recover = nop_job,
    .job_release = nop_release,
    .vm_describe = nop_describe,
    .vm_release = nop_vm,
};

static const char cfg_text[] =
    "[consolidator]\nname = fz\nstate_dir = /nonexistent\n"
    "[host pm0]\ncpus = 0\n[host pm1]\ncpus = 1\n";

static PpDaemon *d;
static PpDriver drv;
static unsigned runs;

static void host_free(gpointer p)
{
    Host *h = p;

    g_free(h->name);
    g_free(h->where);
    g_free(h->addr);
    g_free(h);
}

static void vm_free(gpointer p)
{
    Vm *vm = p;

    json_object_put(vm->hot_set);
    g_free(vm->name);
    g_free(vm);
}

static Host *add_host(const char *name)
{
    Host *h = g_new0(Host, 1);

    h->name = g_strdup(name);
    h->where = g_strdup("0");
    h->addr = g_strdup("10.0.0.1");
    h->ncpus = 1;
    h->up = true;
    h->mem_used_mib = h->mem_total_mib = NAN;
    g_ptr_array_add(d->hosts, h);
    return h;
}

static void daemon_free(void)
{
    if (!d) {
        return;
    }
    g_ptr_array_free(d->jobs, TRUE);
    g_ptr_array_free(d->vms, TRUE);
    g_ptr_array_free(d->hosts, TRUE);
    d->policy->destroy(d->policy_state);
    pp_store_close(d->store);
    pp_config_free(d->cfg);
    g_main_loop_unref(d->loop);
    g_free(d);
    d = NULL;
}

static void daemon_new(void)
{
    g_autoptr(GError) err = NULL;
    Host *pm0;

    d = g_new0(PpDaemon, 1);
    drv.ops = &nop_ops;
    drv.d = d;
    d->drv = &drv;
    d->listen_fd = d->query_fd = -1;
    d->loop = g_main_loop_new(NULL, FALSE);
    d->cfg = pp_config_parse(cfg_text, "/fuzz/fz.ini", &err);
    d->store = pp_store_open(":memory:", &err);
    d->policy = pp_policy_find(d->cfg->policy_name, &err);
    d->policy_state = pp_policy_create(d->policy, d->cfg->kf, "policy", NULL, &err);
    g_assert(d->cfg && d->store && d->policy_state);
    d->hosts = g_ptr_array_new_with_free_func(host_free);
    d->vms = g_ptr_array_new_with_free_func(vm_free);
    d->jobs = g_ptr_array_new_with_free_func((GDestroyNotify)job_free);
    d->last_relocation = -INFINITY;
    pm0 = add_host("pm0");
    add_host("pm1");
    pp_daemon_add_vm(d, "vm0", pm0, 512, 1, NULL);
    pp_daemon_add_vm(d, "vm1", pm0, 512, 1, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *line = NULL;
    json_object *r;

    if (size < 1 || size > 64 * 1024) {
        return 0;
    }
    if (!d || ++runs % 4096 == 0) {
        daemon_free();
        daemon_new();
    }
    line = g_strndup((const char *)data + 1, size - 1);
    r = pp_control_request(d, line, data[0] & 1);
    /* a reply is always an object with "return" or a string "error" */
    g_assert(json_object_is_type(r, json_type_object));
    g_assert(json_object_object_get_ex(r, "return", NULL) !=
             json_object_object_get_ex(r, "error", NULL));
    json_object_put(r);
    /* forget the moves the request started */
    for (guint i = 0; i < d->vms->len; i++) {
        Vm *vm = d->vms->pdata[i];
        vm->job = NULL;
        vm->state = VM_RUNNING;
        vm->host = d->hosts->pdata[0];
    }
    g_ptr_array_set_size(d->jobs, 0);
    return 0;
}
