/*
 * The consolidator daemon: monitor (1 Hz samples into the store), policy
 * (windowed averages in, plan out), controller (migration jobs) and the
 * local driver (emulated hosts = CPU sets + network namespaces on this
 * machine), all on one GLib main loop.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "daemon.h"
#include "guestlog.h"
#include "pp-error.h"
#include "procstat.h"

#include <errno.h>
#include <glib-unix.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef PP_NET_HELPER
#define PP_NET_HELPER "/usr/local/libexec/postpack/pp-net"
#endif

#define QMP_MS 5000

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
        if (strcmp(h->cfg->name, name) == 0) {
            return h;
        }
    }
    return NULL;
}

Vm *pp_daemon_vm(PpDaemon *d, const char *name)
{
    for (guint i = 0; i < d->vms->len; i++) {
        Vm *v = d->vms->pdata[i];
        if (strcmp(v->spec->name, name) == 0) {
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

/* ---- local driver ---- */

static bool run_net_helper(PpDaemon *d, const char *const *args,
                           char **out, GError **errp)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autofree char *err_text = NULL;
    int status;

    g_ptr_array_add(argv, d->net_helper);
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
                    d->net_helper, args[0], g_strstrip(err_text));
        return false;
    }
    return true;
}

static bool net_up(PpDaemon *d, GError **errp)
{
    g_autoptr(GPtrArray) args = g_ptr_array_new();

    g_ptr_array_add(args, "up");
    g_ptr_array_add(args, d->cfg->instance);
    g_ptr_array_add(args, d->cfg->link_rate);
    for (guint i = 0; i < d->hosts->len; i++) {
        g_ptr_array_add(args, ((Host *)d->hosts->pdata[i])->cfg->name);
    }
    g_ptr_array_add(args, NULL);
    if (!run_net_helper(d, (const char *const *)args->pdata, NULL, errp)) {
        return false;
    }
    for (guint i = 0; i < d->hosts->len; i++) {
        Host *h = d->hosts->pdata[i];
        const char *a[] = { "addr", d->cfg->instance, h->cfg->name, NULL };
        g_autofree char *out = NULL;
        if (!run_net_helper(d, a, &out, errp)) {
            return false;
        }
        h->addr = g_strdup(g_strstrip(out));
        h->netns = g_strdup_printf("pp-%s-%s", d->cfg->instance, h->cfg->name);
    }
    return true;
}

static void net_down(PpDaemon *d)
{
    const char *a[] = { "down", d->cfg->instance, NULL };
    g_autoptr(GError) err = NULL;

    if (!run_net_helper(d, a, NULL, &err)) {
        fprintf(stderr, "warning: %s\n", err->message);
    }
}

PpVm *pp_daemon_spawn(PpDaemon *d, Vm *vm, Host *host, bool incoming,
                      const char *tag, GError **errp)
{
    const PpVmSpec *s = vm->spec;
    g_autofree char *append = pp_guest_cmdline(s->workload, s->fill_mib,
                                               errp);
    g_autofree char *run_dir = g_build_filename(d->run_dir, s->name, tag,
                                                NULL);
    g_autofree char *name = g_strdup_printf("%s-%s", s->name, tag);

    if (!append) {
        return NULL;
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
        .cpus = host->cfg->cpus,
        .netns = host->netns,
        .run_dir = run_dir,
        .incoming_defer = incoming,
        /* The local driver's VMs live as long as the daemon. */
        .die_with_parent = true,
    };
    return pp_vm_start(&cfg, 30000, errp);
}

/* ---- QMP plumbing ---- */

static void on_vm_event(PpQmp *q, const char *name, json_object *data,
                        gint64 time_us, gpointer opaque)
{
    Vm *vm = opaque;

    if (vm->job) {
        job_on_event(vm->job, q, name, data, time_us);
    }
    if (strcmp(name, "SHUTDOWN") == 0 && q == vm->qmp) {
        pp_daemon_event(vm->d, "vm-shutdown", vm->spec->name,
                        "guest shut down");
    }
}

static void on_vm_closed(PpQmp *q, const GError *why, gpointer opaque)
{
    Vm *vm = opaque;

    if (vm->job && (q == vm->qmp || q == vm->job->dst_qmp)) {
        job_on_closed(vm->job, q, why);
        return;
    }
    if (q == vm->qmp && vm->state != VM_LOST) {
        vm->state = VM_LOST;
        pp_daemon_event(vm->d, "vm-lost", vm->spec->name,
                        "QEMU went away on %s: %s", vm->host->cfg->name,
                        why ? why->message : "connection closed");
    }
}

void pp_daemon_attach_qmp(PpDaemon *d, Vm *vm, PpQmp *qmp)
{
    pp_qmp_attach(qmp, NULL, on_vm_event, on_vm_closed, vm);
}

typedef struct VcpuQuery {
    GArray *tids;
} VcpuQuery;

static void on_vcpus(PpQmp *q, json_object *ret, const GError *err,
                     gpointer opaque)
{
    GArray *tids = opaque;

    if (!err && json_object_is_type(ret, json_type_array)) {
        g_array_set_size(tids, 0);
        for (size_t i = 0; i < json_object_array_length(ret); i++) {
            json_object *c = json_object_array_get_idx(ret, i), *t;
            if (json_object_object_get_ex(c, "thread-id", &t)) {
                pid_t tid = (pid_t)json_object_get_int(t);
                g_array_append_val(tids, tid);
            }
        }
    }
    g_array_unref(tids);
}

/* Does a query-qmp-schema reply list @value in an enum?  Our extensions
 * are detected this way, never from version strings. */
static bool schema_has_enum_value(json_object *schema, const char *value)
{
    if (!json_object_is_type(schema, json_type_array)) {
        return false;
    }
    for (size_t i = 0; i < json_object_array_length(schema); i++) {
        json_object *e = json_object_array_get_idx(schema, i), *vals;
        if (!json_object_object_get_ex(e, "values", &vals) ||
            !json_object_is_type(vals, json_type_array)) {
            continue;
        }
        for (size_t k = 0; k < json_object_array_length(vals); k++) {
            const char *v = json_object_get_string(
                json_object_array_get_idx(vals, k));
            if (v && strcmp(v, value) == 0) {
                return true;
            }
        }
    }
    return false;
}

static void on_schema(PpQmp *q, json_object *ret, const GError *err,
                      gpointer opaque)
{
    Vm *vm = opaque;

    if (!err) {
        vm->has_instant = schema_has_enum_value(ret, "x-postcopy-instant");
        vm->has_hot_first = schema_has_enum_value(ret,
                                                  "x-postcopy-hot-first");
    }
}

void pp_daemon_probe_features(PpDaemon *d, Vm *vm, PpQmp *qmp)
{
    pp_qmp_send(qmp, "query-qmp-schema", NULL, QMP_MS, on_schema, vm);
}

void pp_daemon_query_vcpus(PpDaemon *d, PpQmp *qmp, GArray *tids)
{
    pp_qmp_send(qmp, "query-cpus-fast", NULL, QMP_MS, on_vcpus,
                g_array_ref(tids));
}

/* ---- monitor ---- */

/* Run time accumulated since the last sample by the threads of @proc
 * (all of them, or only @tids), remembered per thread in vm->last_ns. */
static guint64 delta_ns(Vm *vm, PpVm *proc, GArray *tids, GHashTable *seen,
                        const char *prefix)
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
        gpointer old = g_hash_table_lookup(vm->last_ns, key);
        if (old && ns >= *(guint64 *)old) {
            sum += ns - *(guint64 *)old;
        }
        guint64 *val = g_new(guint64, 1);
        *val = ns;
        g_hash_table_add(seen, g_strdup(key));
        g_hash_table_replace(vm->last_ns, key, val);
    }
    return sum;
}

static void sample_vm(PpDaemon *d, Vm *vm, double t)
{
    gint64 now = g_get_monotonic_time();
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash,
                                                       g_str_equal, g_free,
                                                       NULL);
    guint64 vcpu = 0, all = 0;
    g_autoptr(GError) err = NULL;

    if (vm->state == VM_LOST) {
        return;
    }
    /* During a move the guest runs on either side; count both. */
    vcpu = delta_ns(vm, vm->proc, vm->vcpu_tids, seen, "v");
    all = delta_ns(vm, vm->proc, NULL, seen, "p");
    if (vm->job && vm->job->dst_proc) {
        vcpu += delta_ns(vm, vm->job->dst_proc, vm->job->dst_vcpu_tids, seen,
                         "v");
        all += delta_ns(vm, vm->job->dst_proc, NULL, seen, "p");
    }
    /* Forget threads that are gone. */
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, vm->last_ns);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        if (!g_hash_table_contains(seen, key)) {
            g_hash_table_iter_remove(&it);
        }
    }
    if (vm->last_sample_us) {
        double dt_ns = (now - vm->last_sample_us) * 1000.0;
        vm->cpu = CLAMP(100.0 * vcpu / dt_ns, 0, 100.0 * vm->spec->vcpus);
        vm->proc_cpu = 100.0 * all / dt_ns;
        if (!pp_store_add_vm_sample(d->store, t, vm->spec->name,
                                    vm_guest_host(vm)->cfg->name, vm->cpu,
                                    vm->proc_cpu, vm->spec->mem_mib, &err)) {
            fprintf(stderr, "warning: %s\n", err->message);
        }
    }
    vm->last_sample_us = now;
}

static void sample_host(PpDaemon *d, Host *h, double t)
{
    guint64 busy, total;
    g_autoptr(GError) err = NULL;

    if (!pp_cpustat_read(&h->set, &busy, &total, &err)) {
        fprintf(stderr, "warning: %s\n", err->message);
        return;
    }
    if (h->have_last) {
        h->cpu = pp_cpu_percent(h->last_busy, busy, h->last_total, total, 1);
        if (!pp_store_add_host_sample(d->store, t, h->cfg->name, h->cpu,
                                      &err)) {
            fprintf(stderr, "warning: %s\n", err->message);
        }
    }
    h->have_last = true;
    h->last_busy = busy;
    h->last_total = total;
}

static gboolean on_sample(gpointer opaque)
{
    PpDaemon *d = opaque;
    double t = pp_wall_now();
    g_autoptr(GError) err = NULL;

    if (!pp_store_begin(d->store, &err)) {
        fprintf(stderr, "warning: %s\n", err->message);
        return G_SOURCE_CONTINUE;
    }
    for (guint i = 0; i < d->hosts->len; i++) {
        sample_host(d, d->hosts->pdata[i], t);
    }
    for (guint i = 0; i < d->vms->len; i++) {
        sample_vm(d, d->vms->pdata[i], t);
    }
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
    double avg;

    for (guint i = 0; i < d->hosts->len; i++) {
        Host *h = d->hosts->pdata[i];
        hv[i].name = h->cfg->name;
        hv[i].ncpus = h->cfg->ncpus;
        hv[i].mem_mib = h->cfg->mem_mib;
        hv[i].cpu = pp_store_host_avg(d->store, h->cfg->name, now - window,
                                      now, &avg, &n, NULL) ? avg : 0;
    }
    for (guint i = 0; i < d->vms->len; i++) {
        Vm *vm = d->vms->pdata[i];
        if (vm->state == VM_LOST || vm->state == VM_BROKEN) {
            continue; /* nothing to place: an operator has to look */
        }
        vv[nv].name = vm->spec->name;
        vv[nv].host = vm->host->cfg->name;
        vv[nv].mem_mib = vm->spec->mem_mib;
        vv[nv].cpu = pp_store_vm_avg(d->store, vm->spec->name, now - window,
                                     now, &avg, &n, NULL) ? avg : 0;
        vv[nv].migrating = vm->state == VM_MIGRATING;
        nv++;
    }
    PpClusterView view = {
        .now = now, .last_relocation = d->last_relocation,
        .hosts = hv, .nhosts = d->hosts->len, .vms = vv, .nvms = nv,
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
    for (guint i = 0; i < plan->moves->len; i++) {
        PpMove *m = plan->moves->pdata[i];
        g_autoptr(GError) err = NULL;
        Vm *vm = pp_daemon_vm(d, m->vm);
        Host *to = pp_daemon_host(d, m->to);

        if (pp_daemon_active_jobs(d) >= d->cfg->max_moves) {
            break;
        }
        if (!job_start(d, vm, to, &d->cfg->mode, m->reason, &err)) {
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

    pp_daemon_event(d, "stop", NULL, "signal received, stopping");
    g_main_loop_quit(d->loop);
    return G_SOURCE_CONTINUE;
}

static void vm_free(Vm *vm)
{
    pp_qmp_free(vm->qmp);
    if (vm->proc) {
        pp_vm_stop(vm->proc, 3000, NULL);
        pp_vm_free(vm->proc);
    }
    g_array_unref(vm->vcpu_tids);
    g_hash_table_unref(vm->last_ns);
    json_object_put(vm->hot_set);
    g_free(vm);
}

static void host_free(Host *h)
{
    g_free(h->netns);
    g_free(h->addr);
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
    /* Connections first: no callback may run into a freed job. */
    for (guint i = 0; d->vms && i < d->vms->len; i++) {
        Vm *vm = d->vms->pdata[i];
        pp_qmp_free(vm->qmp);
        vm->qmp = NULL;
    }
    if (d->jobs) {
        g_ptr_array_free(d->jobs, TRUE);
    }
    if (d->vms) {
        g_ptr_array_free(d->vms, TRUE);
    }
    if (d->hosts && d->hosts->len && d->net_helper) {
        net_down(d);
    }
    if (d->hosts) {
        g_ptr_array_free(d->hosts, TRUE);
    }
    if (d->policy_state) {
        d->policy->destroy(d->policy_state);
    }
    pp_store_close(d->store);
    if (d->loop) {
        g_main_loop_unref(d->loop);
    }
    pp_config_free(d->cfg);
    g_free(d->net_helper);
    g_free(d->run_dir);
    g_free(d->last_plan_text);
    g_free(d);
}

static bool daemon_setup(PpDaemon *d, const char *config_path, GError **errp)
{
    static const char *const final[] = { "done", "failed", "cancelled",
                                         "broken", "abandoned", NULL };

    d->cfg = pp_config_load(config_path, errp);
    if (!d->cfg) {
        return false;
    }
    d->policy = pp_policy_find(d->cfg->policy_name, errp);
    if (!d->policy) {
        return false;
    }
    d->policy_state = d->policy->create(d->cfg->kf, "policy", errp);
    if (!d->policy_state) {
        return false;
    }
    for (const char *f = d->cfg->qemu; f; f = f == d->cfg->qemu ?
         d->cfg->kernel : f == d->cfg->kernel ? d->cfg->initrd : NULL) {
        if (!g_file_test(f, G_FILE_TEST_EXISTS)) {
            g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                        "%s: '%s' does not exist (run make qemu guest?)",
                        config_path, f);
            return false;
        }
    }
    if (geteuid() != 0) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "the local driver needs root (network namespaces)");
        return false;
    }
    if (g_mkdir_with_parents(d->cfg->state_dir, 0700) < 0) {
        g_set_error(errp, PP_ERROR, PP_ERROR_IO,
                    "cannot create state directory '%s': %s",
                    d->cfg->state_dir, g_strerror(errno));
        return false;
    }
    d->store = pp_store_open(d->cfg->database, errp);
    if (!d->store) {
        return false;
    }
    /* Jobs a previous run left unfinished: it took its VMs with it. */
    g_autoptr(GPtrArray) stale = pp_store_jobs(d->store, final, errp);
    if (!stale) {
        return false;
    }
    for (guint i = 0; i < stale->len; i++) {
        PpJobRow *r = stale->pdata[i];
        pp_store_job_update(d->store, r->id, pp_wall_now(), "abandoned",
                            "the daemon stopped during the move", NULL);
        pp_daemon_event(d, "warning", r->vm, "job %" G_GINT64_FORMAT
                        " (%s) of a previous run was left in phase %s",
                        r->id, r->mode, r->phase);
    }
    d->run_dir = g_build_filename(d->cfg->state_dir, "run", NULL);
    /* The network helper: $PP_NET_HELPER, the build tree's, or the one
     * installed beside the binary (PREFIX/libexec/postpack). */
    const char *helper = g_getenv("PP_NET_HELPER");
    if (helper) {
        d->net_helper = g_strdup(helper);
    } else if (g_file_test(PP_NET_HELPER, G_FILE_TEST_IS_EXECUTABLE)) {
        d->net_helper = g_strdup(PP_NET_HELPER);
    } else {
        g_autofree char *exe = g_file_read_link("/proc/self/exe", NULL);
        g_autofree char *bindir = g_path_get_dirname(exe ? exe : ".");
        d->net_helper = g_build_filename(bindir, "..", "libexec", "postpack",
                                         "pp-net", NULL);
    }

    for (guint i = 0; i < d->cfg->hosts->len; i++) {
        Host *h = g_new0(Host, 1);
        h->cfg = d->cfg->hosts->pdata[i];
        pp_cpuset_parse(h->cfg->cpus, &h->set, NULL);
        g_ptr_array_add(d->hosts, h);
    }
    if (!net_up(d, errp)) {
        return false;
    }
    for (guint i = 0; i < d->cfg->vms->len; i++) {
        Vm *vm = g_new0(Vm, 1);
        g_autoptr(GError) err = NULL;
        vm->d = d;
        vm->spec = d->cfg->vms->pdata[i];
        vm->host = pp_daemon_host(d, vm->spec->host);
        vm->vcpu_tids = g_array_new(FALSE, FALSE, sizeof(pid_t));
        vm->last_ns = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                            g_free);
        g_ptr_array_add(d->vms, vm);
        vm->proc = pp_daemon_spawn(d, vm, vm->host, false, "boot", errp);
        if (!vm->proc) {
            return false;
        }
        vm->qmp = pp_qmp_connect(pp_vm_qmp_path(vm->proc), QMP_MS, errp);
        if (!vm->qmp) {
            return false;
        }
        pp_daemon_attach_qmp(d, vm, vm->qmp);
        pp_daemon_probe_features(d, vm, vm->qmp);
        pp_daemon_query_vcpus(d, vm->qmp, vm->vcpu_tids);
        pp_daemon_event(d, "vm-start", vm->spec->name, "on %s (%s)",
                        vm->host->cfg->name, vm->host->cfg->cpus);
    }
    return pp_control_listen(d, errp);
}

int pp_daemon_run(const char *config_path, bool daemonize)
{
    PpDaemon *d = g_new0(PpDaemon, 1);
    g_autoptr(GError) err = NULL;

    d->hosts = g_ptr_array_new_with_free_func((GDestroyNotify)host_free);
    d->vms = g_ptr_array_new_with_free_func((GDestroyNotify)vm_free);
    d->jobs = g_ptr_array_new_with_free_func((GDestroyNotify)job_free);
    d->last_relocation = -INFINITY;
    d->listen_fd = -1;
    d->loop = g_main_loop_new(NULL, FALSE);

    if (daemonize && daemon(0, 0) < 0) {
        fprintf(stderr, "consolidator: cannot daemonize: %s\n",
                g_strerror(errno));
        daemon_free(d);
        return 1;
    }
    if (!daemon_setup(d, config_path, &err)) {
        fprintf(stderr, "consolidator: %s\n", err->message);
        daemon_free(d);
        return 1;
    }
    d->started = pp_wall_now();
    g_autofree char *mode = pp_mig_mode_str(&d->cfg->mode);
    pp_daemon_event(d, "start", NULL, "%u hosts, %u VMs, policy %s, %s "
                    "moves%s, control socket %s", d->hosts->len,
                    d->vms->len, d->cfg->policy_name, mode,
                    d->cfg->autopilot ? "" : " (autopilot off)",
                    d->cfg->socket);
    d->sample_source = g_timeout_add((guint)(d->cfg->sample_interval * 1000),
                                     on_sample, d);
    d->decide_source = g_timeout_add((guint)(d->cfg->decide_interval * 1000),
                                     on_decide, d);
    d->prune_source = g_timeout_add_seconds(60, on_prune, d);
    g_unix_signal_add(SIGINT, on_signal, d);
    g_unix_signal_add(SIGTERM, on_signal, d);
    on_sample(d);
    g_main_loop_run(d->loop);
    int rc = d->exit_code;
    daemon_free(d);
    return rc;
}
