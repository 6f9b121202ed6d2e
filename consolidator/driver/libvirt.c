/*
 * The libvirt driver: real hosts, reached through libvirt URIs.
 *
 * Each [host NAME] is a libvirt connection (uri = qemu+ssh://..., any
 * URI).  The VMs are the running domains found there whose names match
 * `domains` (and, with require_metadata, that carry our metadata
 * element); the daemon neither defines nor starts them.  Every second one
 * virConnectGetAllDomainStats call per host samples all its domains (CPU,
 * vCPU, balloon, network, block) and virNodeGetCPUStats and
 * virNodeGetMemoryStats sample the host (over the host's `cpus` only
 * when it has them: a share of a node, as for emulated hosts).
 * Migrations go through libvirt's API, peer-to-peer by default (the
 * source libvirtd drives the migration to the destination's peer_uri
 * and carries it on if this daemon goes away), LIVE | PERSIST_DEST, plus
 * UNDEFINE_SOURCE for persistent domains and POSTCOPY for post-copy
 * modes; the switch is virDomainMigrateStartPostCopy.  Our QEMU's
 * extensions, which libvirt does not know, are set on the source through
 * virDomainQemuMonitorCommand before the move (capabilities, parameters,
 * the hot set), and per domain through -global properties of its XML
 * (docs/consolidator.md).
 *
 * Threads: libvirt calls block (an RPC, a whole migration), so they run
 * in worker threads (a pool; one thread of its own per migration) and
 * hand their results to the main loop, where every daemon object is
 * touched.  libvirt's events come through libvirt-glib's event loop
 * integration, so their callbacks run on the daemon's main loop too, with
 * no locking of daemon state anywhere.  A worker that finishes after the
 * driver closed finds the shared `closed` flag set and drops its result.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "daemon.h"
#include "launcher.h"
#include "migqmp.h"
#include "ppjson.h"
#include "pp-error.h"

#include <libvirt-glib/libvirt-glib.h>
#include <libvirt/libvirt-qemu.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#define PP_XMLNS "https://postpack.dev/xmlns/libvirt/1"
#define POLL_MS 250
#define RECONNECT_S 5
#define SWITCH_TRIES 25

extern const PpDriverOps pp_driver_libvirt;

typedef struct LvShared {
    gint refs;
    gint closed;            /* atomic: results are dropped */
} LvShared;

typedef struct LvDriver {
    PpDriver parent;
    PpDaemon *d;
    LvShared *shared;
    GThreadPool *pool;
    GHashTable *matches;    /* domain name -> GINT(1 managed, 2 not) */
    guint reconnect_source;
} LvDriver;

typedef struct LvHost {
    LvDriver *ld;
    Host *h;
    const PpHostConfig *cfg;
    virConnectPtr conn;     /* NULL while unreachable */
    int lifecycle_cb;
    bool sampling;          /* a sample in flight */
    bool connecting;
    cpu_set_t set;
    bool have_set;
    bool have_last;
    guint64 last_busy, last_total;
    guint generation;       /* samples taken, to find vanished domains */
} LvHost;

typedef struct LvVm {
    Host *last_host;        /* where the counters below come from */
    gint64 last_us;
    guint64 cpu_ns, vcpu_ns, rx, tx, rd, wr;
    bool have_last;
    guint seen_generation;
    int missing;            /* samples in a row without its domain */
    bool probed, probing;
} LvVm;

typedef struct LvJob {
    bool thread_running;    /* the migration call has not returned */
    bool adopted;           /* carried on from a previous run: no call */
    bool poll_pending;
    guint poll_source;
    bool downtime_set;
    bool hot_set_read;
    int switch_tries;
    guint polls;
    bool info_after_switch; /* the source's counters read since the switch */
    char *switch_error;     /* libvirt's last refusal of the switch */
    bool finishing;         /* finish() ran: the end is being recorded */
    guint switch_retry;
    bool checking;          /* an abort's state check in flight */
    char *call_error;       /* the migration call failed once post-copy
                             * was asked for: the next poll says whether
                             * post-copy paused or the move failed */
    bool pause_pending;
} LvJob;

static LvHost *LH(const Host *h) { return h->priv; }
static LvVm *LVM(const Vm *vm) { return vm->priv; }
static LvJob *LJ(const Job *job) { return job->priv; }

static void lv_quiet(void *opaque, virErrorPtr err)
{
    /* Errors are read with virGetLastErrorMessage() where they happen;
     * libvirt's default handler would also print them. */
}

/* ---- work in threads, results on the main loop ---- */

typedef struct LvWork LvWork;
typedef void (*LvRunFunc)(LvWork *w);
typedef void (*LvDoneFunc)(LvDriver *ld, LvWork *w);

struct LvWork {
    LvDriver *ld;           /* valid in done() only */
    LvShared *shared;
    LvRunFunc run;
    LvDoneFunc done;
    virConnectPtr conn;     /* referenced */
    virDomainPtr dom;       /* referenced; may be NULL */
    char *name;             /* of the VM, to find it again on the loop */
    Host *host;
    gint64 job_id;
    int rc;
    char *err;              /* what libvirt said when run() failed */
    gpointer data;
    GDestroyNotify data_free;
};

static void shared_unref(LvShared *s)
{
    if (g_atomic_int_dec_and_test(&s->refs)) {
        g_free(s);
    }
}

static void work_free(LvWork *w)
{
    if (w->dom) {
        virDomainFree(w->dom);
    }
    if (w->conn) {
        virConnectClose(w->conn);
    }
    if (w->data_free) {
        w->data_free(w->data);
    }
    shared_unref(w->shared);
    g_free(w->name);
    g_free(w->err);
    g_free(w);
}

static gboolean work_deliver(gpointer opaque)
{
    LvWork *w = opaque;

    if (!g_atomic_int_get(&w->shared->closed) && w->done) {
        w->done(w->ld, w);
    }
    work_free(w);
    return G_SOURCE_REMOVE;
}

static void work_fail(LvWork *w)
{
    const char *m = virGetLastErrorMessage();

    w->rc = -1;
    g_free(w->err);
    w->err = g_strdup(m && *m ? m : "unknown libvirt error");
}

static gpointer work_thread(gpointer opaque)
{
    LvWork *w = opaque;

    w->run(w);
    g_idle_add_full(G_PRIORITY_DEFAULT, work_deliver, w, NULL);
    return NULL;
}

static void pool_run(gpointer data, gpointer user)
{
    work_thread(data);
}

static LvWork *work_new(LvDriver *ld, LvRunFunc run, LvDoneFunc done,
                        virConnectPtr conn, virDomainPtr dom)
{
    LvWork *w = g_new0(LvWork, 1);

    w->ld = ld;
    w->shared = ld->shared;
    g_atomic_int_inc(&ld->shared->refs);
    w->run = run;
    w->done = done;
    if (conn) {
        virConnectRef(conn);
        w->conn = conn;
    }
    if (dom) {
        virDomainRef(dom);
        w->dom = dom;
    }
    return w;
}

/* Run @w in the pool (short calls) or, with @own_thread, in a thread of
 * its own (a migration, which blocks for as long as it lasts). */
static void work_submit(LvDriver *ld, LvWork *w, bool own_thread)
{
    if (own_thread) {
        g_thread_unref(g_thread_new("pp-migrate", work_thread, w));
    } else {
        g_thread_pool_push(ld->pool, w, NULL);
    }
}

/* The domain of @vm on @h (a new reference), or NULL. */
static virDomainPtr vm_dom(Host *h, const char *name)
{
    LvHost *lh = LH(h);
    virDomainPtr dom;

    if (!lh->conn) {
        return NULL;
    }
    dom = virDomainLookupByName(lh->conn, name);
    return dom;
}

/* A QMP command to the domain's QEMU (libvirt passes it on unread); the
 * reply's "return" member, or NULL with *err set. */
static json_object *qemu_command(virDomainPtr dom, const char *cmd,
                                 json_object *args, char **err)
{
    g_autoptr(json_object) req = json_object_new_object();
    g_autoptr(json_object) rep = NULL;
    char *reply = NULL;
    json_object *ret, *e;

    json_object_object_add(req, "execute", json_object_new_string(cmd));
    if (args) {
        json_object_object_add(req, "arguments", args);
    }
    if (virDomainQemuMonitorCommand(dom, json_object_to_json_string_ext(
                                        req, JSON_C_TO_STRING_PLAIN),
                                    &reply, 0) < 0) {
        const char *m = virGetLastErrorMessage();
        *err = g_strdup_printf("%s: %s", cmd, m ? m : "failed");
        return NULL;
    }
    rep = json_tokener_parse(reply);
    free(reply);
    if (!rep || !json_object_is_type(rep, json_type_object)) {
        *err = g_strdup_printf("%s: malformed reply", cmd);
        return NULL;
    }
    if (json_object_object_get_ex(rep, "error", &e)) {
        const char *desc = "error";
        g_autoptr(GError) perr = NULL;

        if (!pp_json_opt_str(rep, "error.desc", &desc, &perr)) {
            *err = g_strdup_printf("%s: malformed error reply: %s", cmd,
                                   perr->message);
        } else {
            *err = g_strdup_printf("%s: %s", cmd, desc);
        }
        return NULL;
    }
    if (!json_object_object_get_ex(rep, "return", &ret)) {
        *err = g_strdup_printf("%s: no return value", cmd);
        return NULL;
    }
    return json_object_get(ret);
}

/* ---- features of a VM's QEMU ---- */

typedef struct ProbeData {
    bool instant, hot_first;
} ProbeData;

static void probe_run(LvWork *w)
{
    ProbeData *p = w->data;
    g_autofree char *err = NULL;
    g_autoptr(json_object) schema = qemu_command(w->dom, "query-qmp-schema",
                                                 NULL, &err);

    if (!schema) {
        w->rc = -1;
        w->err = g_steal_pointer(&err);
        return;
    }
    p->instant = pp_qmp_schema_has(schema, "x-postcopy-instant");
    p->hot_first = pp_qmp_schema_has(schema, "x-postcopy-hot-first");
}

static void probe_done(LvDriver *ld, LvWork *w)
{
    ProbeData *p = w->data;
    Vm *vm = pp_daemon_vm(ld->d, w->name);

    if (!vm || !vm->priv) {
        return;
    }
    LVM(vm)->probing = false;
    LVM(vm)->probed = true;
    if (w->rc < 0) {
        pp_daemon_event(ld->d, "warning", vm->name, "cannot read its QEMU's "
                        "schema (%s); moving it as upstream QEMU", w->err);
        return;
    }
    vm->has_instant = p->instant;
    vm->has_hot_first = p->hot_first;
}

static void probe_vm(LvDriver *ld, Vm *vm, Host *h)
{
    virDomainPtr dom = vm_dom(h, vm->name);
    LvWork *w;

    if (!dom) {
        return;
    }
    w = work_new(ld, probe_run, probe_done, NULL, dom);
    virDomainFree(dom);
    w->name = g_strdup(vm->name);
    w->data = g_new0(ProbeData, 1);
    w->data_free = g_free;
    LVM(vm)->probing = true;
    work_submit(ld, w, false);
}

/* ---- sampling ---- */

typedef struct DomRec {
    char *name;
    int state;
    guint64 cpu_ns, vcpu_ns, rx, tx, rd, wr;
    bool have_cpu, have_vcpu, have_net, have_block;
    guint64 max_kib, cur_kib;
    guint vcpus;
    int match;              /* 1 managed, 2 not, 0 not checked (known) */
} DomRec;

typedef struct SampleData {
    char **patterns;        /* copies, for the thread */
    bool need_meta;
    GHashTable *known;      /* names already classified: skip the check */
    cpu_set_t set;
    bool have_set;
    gint64 t_us;            /* monotonic, right after the stats call */
    double t;               /* wall clock */
    guint64 busy, total;
    bool have_cpu;
    double mem_used_mib, mem_total_mib;
    GPtrArray *recs;        /* DomRec * */
} SampleData;

static void domrec_free(gpointer p)
{
    DomRec *r = p;

    g_free(r->name);
    g_free(r);
}

static void sample_data_free(gpointer p)
{
    SampleData *s = p;

    g_strfreev(s->patterns);
    if (s->known) {
        g_hash_table_unref(s->known);
    }
    if (s->recs) {
        g_ptr_array_unref(s->recs);
    }
    g_free(s);
}

static guint64 param_ull(virTypedParameterPtr params, int n, const char *key,
                         bool *have)
{
    unsigned long long v = 0;

    if (virTypedParamsGetULLong(params, n, key, &v) == 1) {
        *have = true;
    }
    return v;
}

static bool node_cpu(virConnectPtr conn, int cpu, guint64 *busy,
                     guint64 *total)
{
    int n = 0;
    g_autofree virNodeCPUStatsPtr st = NULL;

    if (virNodeGetCPUStats(conn, cpu, NULL, &n, 0) < 0 || n <= 0) {
        return false;
    }
    st = g_new0(virNodeCPUStats, n);
    if (virNodeGetCPUStats(conn, cpu, st, &n, 0) < 0) {
        return false;
    }
    for (int i = 0; i < n; i++) {
        if (!strcmp(st[i].field, VIR_NODE_CPU_STATS_KERNEL) ||
            !strcmp(st[i].field, VIR_NODE_CPU_STATS_USER)) {
            *busy += st[i].value;
            *total += st[i].value;
        } else if (!strcmp(st[i].field, VIR_NODE_CPU_STATS_IDLE) ||
                   !strcmp(st[i].field, VIR_NODE_CPU_STATS_IOWAIT)) {
            *total += st[i].value;
        }
    }
    return true;
}

static void sample_run(LvWork *w)
{
    SampleData *s = w->data;
    virDomainStatsRecordPtr *recs = NULL;
    unsigned int stats = VIR_DOMAIN_STATS_STATE | VIR_DOMAIN_STATS_CPU_TOTAL |
                         VIR_DOMAIN_STATS_BALLOON | VIR_DOMAIN_STATS_VCPU |
                         VIR_DOMAIN_STATS_INTERFACE | VIR_DOMAIN_STATS_BLOCK;
    /* NOWAIT: a domain busy with a job (a migration) reports what it
     * can at once instead of queueing behind the migration's own
     * monitor calls. */
    int n = virConnectGetAllDomainStats(
        w->conn, stats, &recs, VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE |
        VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT);

    s->t = g_get_real_time() / 1e6;
    s->t_us = g_get_monotonic_time();
    if (n < 0) {
        work_fail(w);
        return;
    }
    s->recs = g_ptr_array_new_with_free_func(domrec_free);
    for (int i = 0; i < n; i++) {
        virTypedParameterPtr p = recs[i]->params;
        int np = recs[i]->nparams;
        DomRec *r = g_new0(DomRec, 1);
        bool have = false;
        unsigned int cnt = 0;

        r->name = g_strdup(virDomainGetName(recs[i]->dom));
        virTypedParamsGetInt(p, np, "state.state", &r->state);
        r->cpu_ns = param_ull(p, np, "cpu.time", &r->have_cpu);
        virTypedParamsGetUInt(p, np, "vcpu.current", &r->vcpus);
        for (unsigned int v = 0; v < MAX(r->vcpus, 1); v++) {
            g_autofree char *k = g_strdup_printf("vcpu.%u.time", v);
            r->vcpu_ns += param_ull(p, np, k, &r->have_vcpu);
        }
        r->max_kib = param_ull(p, np, "balloon.maximum", &have);
        r->cur_kib = param_ull(p, np, "balloon.current", &have);
        virTypedParamsGetUInt(p, np, "net.count", &cnt);
        for (unsigned int k = 0; k < cnt; k++) {
            g_autofree char *rx = g_strdup_printf("net.%u.rx.bytes", k);
            g_autofree char *tx = g_strdup_printf("net.%u.tx.bytes", k);
            r->rx += param_ull(p, np, rx, &r->have_net);
            r->tx += param_ull(p, np, tx, &r->have_net);
        }
        cnt = 0;
        virTypedParamsGetUInt(p, np, "block.count", &cnt);
        for (unsigned int k = 0; k < cnt; k++) {
            g_autofree char *rd = g_strdup_printf("block.%u.rd.bytes", k);
            g_autofree char *wr = g_strdup_printf("block.%u.wr.bytes", k);
            r->rd += param_ull(p, np, rd, &r->have_block);
            r->wr += param_ull(p, np, wr, &r->have_block);
        }
        if (!g_hash_table_contains(s->known, r->name)) {
            r->match = pp_name_matches(s->patterns, r->name) ? 1 : 2;
            if (r->match == 1 && s->need_meta) {
                char *meta = virDomainGetMetadata(
                    recs[i]->dom, VIR_DOMAIN_METADATA_ELEMENT, PP_XMLNS,
                    VIR_DOMAIN_AFFECT_LIVE);
                r->match = meta ? 1 : 2;
                free(meta);
            }
        }
        g_ptr_array_add(s->recs, r);
    }
    virDomainStatsRecordListFree(recs);

    /* The host: its share of the node's CPUs, or all of them. */
    if (s->have_set) {
        s->have_cpu = true;
        for (int c = 0; c < CPU_SETSIZE && s->have_cpu; c++) {
            if (CPU_ISSET(c, &s->set)) {
                s->have_cpu = node_cpu(w->conn, c, &s->busy, &s->total);
            }
        }
    } else {
        s->have_cpu = node_cpu(w->conn, VIR_NODE_CPU_STATS_ALL_CPUS,
                               &s->busy, &s->total);
    }
    int nm = 0;
    s->mem_used_mib = s->mem_total_mib = NAN;
    if (virNodeGetMemoryStats(w->conn, VIR_NODE_MEMORY_STATS_ALL_CELLS, NULL,
                              &nm, 0) == 0 && nm > 0) {
        g_autofree virNodeMemoryStatsPtr ms = g_new0(virNodeMemoryStats, nm);
        guint64 total = 0, avail = 0;
        if (virNodeGetMemoryStats(w->conn, VIR_NODE_MEMORY_STATS_ALL_CELLS,
                                  ms, &nm, 0) == 0) {
            for (int i = 0; i < nm; i++) {
                if (!strcmp(ms[i].field, VIR_NODE_MEMORY_STATS_TOTAL)) {
                    total = ms[i].value;
                } else if (!strcmp(ms[i].field, VIR_NODE_MEMORY_STATS_FREE) ||
                           !strcmp(ms[i].field,
                                   VIR_NODE_MEMORY_STATS_BUFFERS) ||
                           !strcmp(ms[i].field,
                                   VIR_NODE_MEMORY_STATS_CACHED)) {
                    avail += ms[i].value;
                }
            }
            if (total) {
                s->mem_total_mib = total / 1024.0;
                s->mem_used_mib = (total - MIN(avail, total)) / 1024.0;
            }
        }
    }
}

static double rate(guint64 now, guint64 last, double dt_s)
{
    return now >= last && dt_s > 0 ? (now - last) / dt_s : NAN;
}

static void vm_stats(PpDaemon *d, Vm *vm, Host *h, const DomRec *r,
                     const SampleData *s)
{
    LvVm *lv = LVM(vm);

    if (lv->have_last && lv->last_host == h && s->t_us > lv->last_us) {
        double dt_s = (s->t_us - lv->last_us) / 1e6;
        PpVmStats st;

        pp_vm_stats_init(&st);
        st.cpu = r->have_vcpu ? CLAMP(100.0 * (r->vcpu_ns - MIN(lv->vcpu_ns,
                                                                r->vcpu_ns)) /
                                      (dt_s * 1e9), 0, 100.0 * vm->vcpus) :
                 100.0 * (r->cpu_ns - MIN(lv->cpu_ns, r->cpu_ns)) /
                 (dt_s * 1e9);
        st.proc_cpu = 100.0 * (r->cpu_ns - MIN(lv->cpu_ns, r->cpu_ns)) /
                      (dt_s * 1e9);
        if (r->cur_kib) {
            st.mem_used_mib = r->cur_kib / 1024.0;
        }
        if (r->have_net) {
            st.net_rx_bps = rate(r->rx, lv->rx, dt_s);
            st.net_tx_bps = rate(r->tx, lv->tx, dt_s);
        }
        if (r->have_block) {
            st.disk_rd_bps = rate(r->rd, lv->rd, dt_s);
            st.disk_wr_bps = rate(r->wr, lv->wr, dt_s);
        }
        pp_daemon_sample_vm(d, vm, s->t, &st);
    }
    lv->have_last = true;
    lv->last_host = h;
    lv->last_us = s->t_us;
    lv->cpu_ns = r->cpu_ns;
    lv->vcpu_ns = r->vcpu_ns;
    lv->rx = r->rx;
    lv->tx = r->tx;
    lv->rd = r->rd;
    lv->wr = r->wr;
}

static void host_lost(LvDriver *ld, Host *h, const char *why);

static void sample_done(LvDriver *ld, LvWork *w)
{
    PpDaemon *d = ld->d;
    SampleData *s = w->data;
    Host *h = w->host;
    LvHost *lh = LH(h);
    g_autoptr(GError) err = NULL;

    lh->sampling = false;
    if (w->rc < 0) {
        if (lh->conn && virConnectIsAlive(lh->conn) != 1) {
            host_lost(ld, h, w->err);
        } else {
            pp_daemon_event(d, "warning", NULL, "cannot sample host %s: %s",
                            h->name, w->err);
        }
        return;
    }
    if (!pp_store_begin(d->store, &err)) {
        fprintf(stderr, "warning: %s\n", err->message);
    }
    lh->generation++;
    if (s->have_cpu) {
        if (lh->have_last && s->total > lh->last_total) {
            double cpu = 100.0 * (s->busy - MIN(lh->last_busy, s->busy)) /
                         (s->total - lh->last_total);
            pp_daemon_sample_host(d, h, s->t, CLAMP(cpu, 0, 100),
                                  s->mem_used_mib, s->mem_total_mib);
        }
        lh->have_last = true;
        lh->last_busy = s->busy;
        lh->last_total = s->total;
    }
    for (guint i = 0; i < s->recs->len; i++) {
        DomRec *r = s->recs->pdata[i];
        Vm *vm;

        if (r->match) {
            g_hash_table_replace(ld->matches, g_strdup(r->name),
                                 GINT_TO_POINTER(r->match));
        }
        if (GPOINTER_TO_INT(g_hash_table_lookup(ld->matches, r->name)) != 1) {
            continue;
        }
        vm = pp_daemon_vm(d, r->name);
        if (!vm) {
            if (r->state != VIR_DOMAIN_RUNNING) {
                continue; /* started elsewhere, or an incoming migration */
            }
            vm = pp_daemon_add_vm(d, r->name, h, MAX(r->max_kib / 1024, 1),
                                  MAX(r->vcpus, 1), g_new0(LvVm, 1));
            pp_daemon_event(d, "vm-found", vm->name, "on %s (%u vCPUs, %"
                            G_GUINT64_FORMAT " MiB)", h->name, vm->vcpus,
                            vm->mem_mib);
        } else if (!vm->job && vm->host != h &&
                   r->state == VIR_DOMAIN_RUNNING) {
            /* Moved or restarted there by someone else. */
            pp_daemon_event(d, vm->state == VM_LOST ? "vm-found" : "vm-moved",
                            vm->name, "now on %s (was on %s)", h->name,
                            vm->host->name);
            vm->host = h;
            vm->state = VM_RUNNING;
        } else if (!vm->job && vm->state == VM_LOST &&
                   r->state == VIR_DOMAIN_RUNNING) {
            pp_daemon_event(d, "vm-found", vm->name, "runs again on %s",
                            h->name);
            vm->state = VM_RUNNING;
        }
        if (vm->host == h) {
            LVM(vm)->seen_generation = lh->generation;
            LVM(vm)->missing = 0;
        }
        if (!LVM(vm)->probed && !LVM(vm)->probing && vm->host == h) {
            probe_vm(ld, vm, h);
        }
        if (vm_guest_host(vm) == h) {
            vm_stats(d, vm, h, r, s);
        }
    }
    /* Domains gone from their host (shut down, or moved elsewhere: then
     * a later sample finds them there). */
    for (guint i = 0; i < d->vms->len; i++) {
        Vm *vm = d->vms->pdata[i];
        if (vm->host != h || vm->job || vm->state != VM_RUNNING ||
            LVM(vm)->seen_generation == lh->generation) {
            continue;
        }
        if (++LVM(vm)->missing >= 2) {
            g_autofree char *why = g_strdup_printf("domain no longer runs on "
                                                   "%s", h->name);
            pp_daemon_vm_lost(d, vm, why);
        }
    }
    if (!pp_store_commit(d->store, &err)) {
        fprintf(stderr, "warning: %s\n", err->message);
    }
}

static void lv_sample(PpDriver *drv, double t)
{
    LvDriver *ld = (LvDriver *)drv;
    PpDaemon *d = ld->d;

    for (guint i = 0; i < d->hosts->len; i++) {
        Host *h = d->hosts->pdata[i];
        LvHost *lh = LH(h);
        SampleData *s;
        LvWork *w;

        if (!lh->conn || lh->sampling) {
            continue; /* one in flight per host: a slow host is not piled */
        }
        if (h->power != HOST_ON) {
            continue; /* suspended (power.c): nothing to ask it */
        }
        s = g_new0(SampleData, 1);
        s->patterns = g_strdupv(d->cfg->domains);
        s->need_meta = d->cfg->require_metadata;
        s->known = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                         NULL);
        GHashTableIter it;
        gpointer key;
        g_hash_table_iter_init(&it, ld->matches);
        while (g_hash_table_iter_next(&it, &key, NULL)) {
            g_hash_table_add(s->known, g_strdup(key));
        }
        s->set = lh->set;
        s->have_set = lh->have_set;
        w = work_new(ld, sample_run, sample_done, lh->conn, NULL);
        w->host = h;
        w->data = s;
        w->data_free = sample_data_free;
        lh->sampling = true;
        work_submit(ld, w, false);
    }
}

/* ---- connections ---- */

static void on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event,
                         int detail, void *opaque);

static void connected(LvDriver *ld, Host *h, virConnectPtr conn)
{
    LvHost *lh = LH(h);

    lh->conn = conn;
    lh->lifecycle_cb = virConnectDomainEventRegisterAny(
        conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
        VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), h, NULL);
    /* A dead peer is noticed within seconds, not at the next RPC. */
    virConnectSetKeepAlive(conn, 5, 3);
    h->up = true;
}

static void on_conn_closed(virConnectPtr conn, int reason, void *opaque);

static gboolean on_reconnect_timer(gpointer opaque);

static void host_lost(LvDriver *ld, Host *h, const char *why)
{
    LvHost *lh = LH(h);

    if (!lh->conn) {
        return;
    }
    if (lh->lifecycle_cb >= 0) {
        virConnectDomainEventDeregisterAny(lh->conn, lh->lifecycle_cb);
        lh->lifecycle_cb = -1;
    }
    virConnectUnregisterCloseCallback(lh->conn, on_conn_closed);
    virConnectClose(lh->conn);
    lh->conn = NULL;
    lh->have_last = false;
    h->up = false;
    pp_daemon_event(ld->d, "warning", NULL, "lost host %s (%s): %s; trying "
                    "again every %d s", h->name, lh->cfg->uri, why,
                    RECONNECT_S);
    if (!ld->reconnect_source) {
        ld->reconnect_source = g_timeout_add_seconds(RECONNECT_S,
                                                     on_reconnect_timer, ld);
    }
}

static void on_conn_closed(virConnectPtr conn, int reason, void *opaque)
{
    Host *h = opaque;
    LvHost *lh = LH(h);
    static const char *const reasons[] = {
        "error", "end of file", "keepalive timeout", "client closed",
    };

    if (lh && lh->conn == conn) {
        host_lost(lh->ld, h, reason >= 0 && reason < 4 ? reasons[reason] :
                  "closed");
    }
}

typedef struct ConnectData {
    char *uri;
    virConnectPtr conn;
} ConnectData;

static void connect_data_free(gpointer p)
{
    ConnectData *c = p;

    if (c->conn) {
        virConnectClose(c->conn);
    }
    g_free(c->uri);
    g_free(c);
}

static void connect_run(LvWork *w)
{
    ConnectData *c = w->data;

    c->conn = virConnectOpen(c->uri);
    if (!c->conn) {
        work_fail(w);
    }
}

static void connect_done(LvDriver *ld, LvWork *w)
{
    ConnectData *c = w->data;
    Host *h = w->host;

    LH(h)->connecting = false;
    if (!c->conn) {
        return; /* the timer tries again */
    }
    connected(ld, h, g_steal_pointer(&c->conn));
    virConnectRegisterCloseCallback(LH(h)->conn, on_conn_closed, h, NULL);
    pp_daemon_event(ld->d, "host-up", NULL, "host %s is back (%s)", h->name,
                    LH(h)->cfg->uri);
}

static gboolean on_reconnect_timer(gpointer opaque)
{
    LvDriver *ld = opaque;
    bool any = false;

    for (guint i = 0; i < ld->d->hosts->len; i++) {
        Host *h = ld->d->hosts->pdata[i];
        LvHost *lh = LH(h);
        if (lh->conn) {
            continue;
        }
        any = true;
        if (!lh->connecting && h->power != HOST_OFF &&
            h->power != HOST_SUSPENDING) {
            ConnectData *c = g_new0(ConnectData, 1);
            LvWork *w = work_new(ld, connect_run, connect_done, NULL, NULL);
            c->uri = g_strdup(lh->cfg->uri);
            w->data = c;
            w->data_free = connect_data_free;
            w->host = h;
            lh->connecting = true;
            work_submit(ld, w, false);
        }
    }
    if (!any) {
        ld->reconnect_source = 0;
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

/* ---- migration ---- */

static Job *job_of(LvDriver *ld, gint64 id)
{
    for (guint i = 0; i < ld->d->jobs->len; i++) {
        Job *job = ld->d->jobs->pdata[i];
        if (job->id == id) {
            return job;
        }
    }
    return NULL;
}

/* A job this driver still carries out (its LvJob is alive). */
static Job *live_job(LvDriver *ld, gint64 id)
{
    Job *job = job_of(ld, id);

    return job && job->priv && job_is_active(job) ? job : NULL;
}

static void json_free(gpointer p)
{
    json_object_put(p);
}

typedef struct MigData {
    GPtrArray *qmp;         /* json_object *: {cmd, args} to send first */
    char *dconnuri;         /* peer-to-peer: the destination libvirtd */
    char *dst_uri;          /* direct: the destination connection's URI */
    virConnectPtr dconn;    /* direct: referenced */
    char *migrate_uri;      /* VIR_MIGRATE_PARAM_URI or NULL */
    char *dst_cpus;         /* pin vCPUs there (DEST_XML), or NULL */
    guint64 bandwidth;      /* MiB/s, 0: none */
    unsigned int flags;
    GPtrArray *warnings;    /* char *: extension setup that failed */
} MigData;

static void mig_data_free(gpointer p)
{
    MigData *m = p;

    g_ptr_array_unref(m->qmp);
    g_free(m->dconnuri);
    g_free(m->dst_uri);
    if (m->dconn) {
        virConnectClose(m->dconn);
    }
    g_free(m->migrate_uri);
    g_free(m->dst_cpus);
    g_ptr_array_unref(m->warnings);
    g_free(m);
}

/* The domain XML with its vCPUs pinned to @cpus (a new string). */
static char *xml_with_cpuset(const char *xml, const char *cpus)
{
    g_autoptr(GRegex) drop = g_regex_new("(<vcpu\\b[^>]*?)\\s+cpuset=(['\"])"
                                         "[^'\"]*\\2", 0, 0, NULL);
    g_autoptr(GRegex) add = g_regex_new("<vcpu\\b", 0, 0, NULL);
    g_autofree char *repl = g_strdup_printf("<vcpu cpuset='%s'", cpus);
    g_autofree char *bare = g_regex_replace(drop, xml, -1, 0, "\\1", 0,
                                            NULL);

    return bare ? g_regex_replace(add, bare, -1, 0, repl, 0, NULL) : NULL;
}

static void migrate_run(LvWork *w)
{
    MigData *m = w->data;
    virTypedParameterPtr params = NULL;
    int np = 0, maxp = 0;
    g_autofree char *xml = NULL;

    for (guint i = 0; i < m->qmp->len; i++) {
        json_object *c = m->qmp->pdata[i], *cmd, *args = NULL;
        g_autofree char *err = NULL;
        json_object_object_get_ex(c, "execute", &cmd);
        json_object_object_get_ex(c, "arguments", &args);
        g_autoptr(json_object) r = qemu_command(
            w->dom, json_object_get_string(cmd),
            args ? json_object_get(args) : NULL, &err);
        if (!r) {
            g_ptr_array_add(m->warnings, g_steal_pointer(&err));
        }
    }
    if (virDomainIsPersistent(w->dom) == 1) {
        m->flags |= VIR_MIGRATE_UNDEFINE_SOURCE;
    }
    if (m->migrate_uri) {
        virTypedParamsAddString(&params, &np, &maxp, VIR_MIGRATE_PARAM_URI,
                                m->migrate_uri);
    }
    if (m->bandwidth) {
        virTypedParamsAddULLong(&params, &np, &maxp,
                                VIR_MIGRATE_PARAM_BANDWIDTH, m->bandwidth);
    }
    if (m->dst_cpus) {
        g_autofree char *src = virDomainGetXMLDesc(w->dom,
                                                   VIR_DOMAIN_XML_MIGRATABLE);
        if (!src) {
            work_fail(w);
            virTypedParamsFree(params, np);
            return;
        }
        xml = xml_with_cpuset(src, m->dst_cpus);
        virTypedParamsAddString(&params, &np, &maxp,
                                VIR_MIGRATE_PARAM_DEST_XML, xml);
    }
    if (m->dconnuri) {
        w->rc = virDomainMigrateToURI3(w->dom, m->dconnuri, params, np,
                                       m->flags);
    } else {
        virDomainPtr dd = NULL;
        if (!m->dconn) {
            m->dconn = virConnectOpen(m->dst_uri);
        }
        if (m->dconn) {
            dd = virDomainMigrate3(w->dom, m->dconn, params, np, m->flags);
        }
        w->rc = dd ? 0 : -1;
        if (dd) {
            virDomainFree(dd);
        }
    }
    if (w->rc < 0) {
        work_fail(w);
    }
    virTypedParamsFree(params, np);
}

static void abort_check(LvDriver *ld, Job *job);
static void finish(LvDriver *ld, Job *job);

static void migrate_done(LvDriver *ld, LvWork *w)
{
    MigData *m = w->data;
    Job *job = live_job(ld, w->job_id);

    if (!job) {
        return;
    }
    LJ(job)->thread_running = false;
    for (guint i = 0; i < m->warnings->len; i++) {
        pp_daemon_event(ld->d, "warning", job->vm->name, "%s; moving "
                        "without it", (char *)m->warnings->pdata[i]);
    }
    if (job->aborting) {
        abort_check(ld, job);
    } else if (w->rc == 0) {
        finish(ld, job);
    } else if (job->switch_requested) {
        /* Post-copy may have paused (recoverable) rather than failed:
         * the next poll reads the domain's state and decides. */
        g_free(LJ(job)->call_error);
        LJ(job)->call_error = g_strdup(w->err);
    } else {
        job_failed(job, w->err);
    }
}

/* Arguments of migrate-set-parameters for our QEMU's post-copy settings. */
static json_object *qmp_cmd(const char *cmd, json_object *args)
{
    json_object *c = json_object_new_object();

    json_object_object_add(c, "execute", json_object_new_string(cmd));
    if (args) {
        json_object_object_add(c, "arguments", args);
    }
    return c;
}

static gboolean on_poll_timer(gpointer opaque);

/* How the migration call moves @job (a recovery uses the same). */
static MigData *mig_data_new(const Job *job)
{
    const PpConfig *cfg = job->d->cfg;
    LvHost *dst = LH(job->to);
    MigData *m = g_new0(MigData, 1);

    m->qmp = g_ptr_array_new_with_free_func(json_free);
    m->warnings = g_ptr_array_new_with_free_func(g_free);
    m->flags = VIR_MIGRATE_LIVE | VIR_MIGRATE_PERSIST_DEST;
    if (job->mode.kind != PP_MIG_PRECOPY) {
        m->flags |= VIR_MIGRATE_POSTCOPY;
    }
    if (cfg->peer_to_peer) {
        m->flags |= VIR_MIGRATE_PEER2PEER;
        m->dconnuri = g_strdup(dst->cfg->peer_uri);
    } else {
        m->dconn = dst->conn;
        virConnectRef(m->dconn);
    }
    if (dst->cfg->migration_address) {
        m->migrate_uri = g_strdup_printf("tcp://%s",
                                         dst->cfg->migration_address);
    }
    m->bandwidth = cfg->max_bandwidth;
    return m;
}

static bool lv_migrate_start(PpDriver *drv, Job *job, GError **errp)
{
    LvDriver *ld = (LvDriver *)drv;
    Vm *vm = job->vm;
    LvHost *src = LH(job->from), *dst = LH(job->to);
    virDomainPtr dom;
    MigData *m;
    LvWork *w;

    if (!src->conn || !dst->conn) {
        g_set_error(errp, PP_ERROR, PP_ERROR_DISCONNECTED,
                    "host '%s' is not reachable", src->conn ?
                    job->to->name : job->from->name);
        return false;
    }
    dom = virDomainLookupByName(src->conn, vm->name);
    if (!dom) {
        g_set_error(errp, PP_ERROR, PP_ERROR_FAILED,
                    "no domain '%s' on %s: %s", vm->name, job->from->name,
                    virGetLastErrorMessage());
        return false;
    }
    m = mig_data_new(job);
    m->dst_cpus = g_strdup(dst->cfg->cpus);
    /* Our QEMU's extensions: libvirt sets only the capabilities and
     * parameters it knows, so these stay as set here. */
    if (vm->has_instant || vm->has_hot_first) {
        PpMigCap caps[3];
        size_t n = 0;

        /* Ours need postcopy-ram in the same set; libvirt turns it on
         * again for a post-copy move (VIR_MIGRATE_POSTCOPY). */
        if (job->mode.kind != PP_MIG_PRECOPY) {
            caps[n++] = (PpMigCap) { "postcopy-ram", true };
        }
        n += job_our_caps(job, caps + n);
        g_ptr_array_add(m->qmp, qmp_cmd("migrate-set-capabilities",
                                        pp_mig_caps_args(caps, n)));
    }
    if (job_hot_first(job)) {
        json_object *p = json_object_new_object();

        job_our_source_params(job, p);
        g_ptr_array_add(m->qmp, qmp_cmd("migrate-set-parameters", p));
        if (vm->hot_set) {
            json_object *hs = json_object_new_object();
            json_object_object_add(hs, "blocks", json_object_get(vm->hot_set));
            g_ptr_array_add(m->qmp, qmp_cmd("x-set-hot-set", hs));
        }
    }
    job->priv = g_new0(LvJob, 1);
    w = work_new(ld, migrate_run, migrate_done, src->conn, dom);
    virDomainFree(dom);
    w->name = g_strdup(vm->name);
    w->job_id = job->id;
    w->data = m;
    w->data_free = mig_data_free;
    LJ(job)->thread_running = true;
    LJ(job)->poll_source = g_timeout_add(POLL_MS, on_poll_timer, job);
    work_submit(ld, w, true);
    return true;
}

typedef struct PollData {
    int type;               /* virDomainJobType; -1: source domain gone */
    guint64 processed, postcopy_reqs;
    bool have_reqs;
    int state, reason;
    bool have_state;        /* state and reason were read */
    bool dst_runs;          /* checked when the source is gone or idle */
    bool dst_postcopy_failed; /* ... running, reason post-copy failed */
    bool read_hot_set;
    json_object *hot_set;
    bool read_info;         /* our QEMU: its query-migrate counters */
    bool after_switch;      /* ... asked for after the switch */
    json_object *info;
} PollData;

static void poll_data_free(gpointer p)
{
    PollData *pd = p;

    json_object_put(pd->hot_set);
    json_object_put(pd->info);
    g_free(pd);
}

static void poll_run(LvWork *w)
{
    PollData *pd = w->data;
    virTypedParameterPtr params = NULL;
    int np = 0;
    unsigned long long v;

    pd->type = -1;
    if (!w->dom) {
        /* the source domain is gone: only the destination can tell */
    } else if (virDomainGetJobStats(w->dom, &pd->type, &params, &np, 0) < 0) {
        pd->type = -1;
    } else {
        if (virTypedParamsGetULLong(params, np, VIR_DOMAIN_JOB_DATA_PROCESSED,
                                    &v) == 1) {
            pd->processed = v;
        }
        if (virTypedParamsGetULLong(params, np,
                                    VIR_DOMAIN_JOB_MEMORY_POSTCOPY_REQS,
                                    &v) == 1) {
            pd->postcopy_reqs = v;
            pd->have_reqs = true;
        }
        virTypedParamsFree(params, np);
    }
    pd->have_state = w->dom &&
                     virDomainGetState(w->dom, &pd->state, &pd->reason, 0) == 0;
    if (w->dom && !pd->have_state) {
        pd->type = -1;
    }
    if (w->dom && pd->read_hot_set) {
        g_autofree char *err = NULL;
        pd->hot_set = qemu_command(w->dom, "x-query-hot-set", NULL, &err);
    }
    if (w->dom && pd->read_info && pd->type == VIR_DOMAIN_JOB_UNBOUNDED) {
        g_autofree char *err = NULL;
        pd->info = qemu_command(w->dom, "query-migrate", NULL, &err);
    }
    if ((pd->type == -1 || pd->type == VIR_DOMAIN_JOB_NONE) && w->conn) {
        /* w->conn is the destination's: does the guest run there? */
        virDomainPtr dd = virDomainLookupByName(w->conn, w->name);
        int st = 0, reason = 0;
        if (dd && virDomainGetState(dd, &st, &reason, 0) == 0) {
            pd->dst_runs = st == VIR_DOMAIN_RUNNING;
            pd->dst_postcopy_failed =
                st == VIR_DOMAIN_RUNNING &&
                reason == VIR_DOMAIN_RUNNING_POSTCOPY_FAILED;
        }
        if (dd) {
            virDomainFree(dd);
        }
    }
}

static void downtime_run(LvWork *w)
{
    if (virDomainMigrateSetMaxDowntime(w->dom, GPOINTER_TO_UINT(w->data),
                                       0) < 0) {
        work_fail(w);
    }
}

static void downtime_done(LvDriver *ld, LvWork *w)
{
    Job *job = live_job(ld, w->job_id);

    if (job && w->err) {
        pp_daemon_event(ld->d, "warning", job->vm->name,
                        "virDomainMigrateSetMaxDowntime: %s", w->err);
    }
}

/*
 * downtime_limit, once the migration moves data: a call of its own, since
 * libvirt may hold it while the migration is still being set up, and
 * the progress polls must go on meanwhile.
 */
static void set_downtime(LvDriver *ld, Job *job)
{
    virDomainPtr dom = vm_dom(job->from, job->vm->name);
    LvWork *w;

    LJ(job)->downtime_set = true;
    if (!dom) {
        return;
    }
    w = work_new(ld, downtime_run, downtime_done, NULL, dom);
    virDomainFree(dom);
    w->data = GUINT_TO_POINTER((guint)MIN(job->d->cfg->downtime_ms,
                                          G_MAXUINT));
    w->job_id = job->id;
    work_submit(ld, w, false);
}

static void poll_done(LvDriver *ld, LvWork *w)
{
    PollData *pd = w->data;
    Job *job = live_job(ld, w->job_id);
    LvJob *lj;

    if (!job) {
        return;
    }
    lj = LJ(job);
    lj->poll_pending = false;
    if (pd->read_hot_set) {
        lj->hot_set_read = true;
        g_autoptr(GError) herr = NULL;

        if (!pd->hot_set) {
            /* x-query-hot-set failed; the next move tracks again */
        } else if (pp_hot_set_check(pd->hot_set, NULL, &herr)) {
            pp_hot_set_strip_faults(pd->hot_set);
            json_object_put(job->vm->hot_set);
            job->vm->hot_set = json_object_get(pd->hot_set);
        } else {
            pp_daemon_event(ld->d, "protocol-error", job->vm->name,
                            "source QEMU: %s (not kept)", herr->message);
        }
    }
    if (pd->info) {
        g_autoptr(GError) perr = NULL;

        if (!pp_postcopy_stats_update(&job->pc, pd->info, &perr)) {
            pp_daemon_event(ld->d, "protocol-error", job->vm->name,
                            "source QEMU: %s (ignored)", perr->message);
        }
        lj->info_after_switch |= pd->after_switch;
    }
    if (job->aborting) {
        return;
    }
    if (pd->type == VIR_DOMAIN_JOB_UNBOUNDED) {
        job->bytes = MAX(job->bytes, (gint64)pd->processed);
        if (pd->have_reqs) {
            job->postcopy_requests = MAX(job->postcopy_requests,
                                         (gint64)pd->postcopy_reqs);
        }
        if (job->state == JOB_STARTING && pd->processed > 0) {
            job_migrating(job);
        }
        if (!lj->downtime_set && job->mode.kind != PP_MIG_POSTCOPY_INSTANT &&
            pd->processed > 0) {
            set_downtime(ld, job);
        }
    }
    if (pd->have_state && pd->state == VIR_DOMAIN_PAUSED &&
        pd->reason == VIR_DOMAIN_PAUSED_POSTCOPY) {
        if (job->state == JOB_STARTING) {
            job_migrating(job);
        }
        if (!job->switched && job->t_stop == 0) {
            job->t_stop = pp_wall_now();
        }
        job_switched(job);
    } else if ((pd->have_state && pd->state == VIR_DOMAIN_PAUSED &&
                pd->reason == VIR_DOMAIN_PAUSED_POSTCOPY_FAILED) ||
               pd->dst_postcopy_failed) {
        /* The channel broke after the switch; libvirt keeps both sides
         * for VIR_MIGRATE_POSTCOPY_RESUME.  While paused this stays so
         * until a recovery attempt's call says otherwise. */
        g_clear_pointer(&lj->call_error, g_free);
        if (job->state != JOB_PAUSED) {
            job_paused(job, "post-copy failed: both sides wait for a "
                       "recovery");
        }
        return;
    }
    if (job->state == JOB_PAUSED) {
        if (job->recovering && pd->have_state &&
            pd->state == VIR_DOMAIN_PAUSED &&
            pd->reason == VIR_DOMAIN_PAUSED_POSTCOPY) {
            job_recovered(job);
        }
        return;
    }
    if (lj->call_error && !lj->thread_running) {
        /* The call failed and post-copy did not pause: a real failure
         * (after the switch the job keeps both sides as BROKEN). */
        g_autofree char *why = NULL;
        if (pd->type == VIR_DOMAIN_JOB_UNBOUNDED) {
            return; /* libvirt still winds the job down: the next poll */
        }
        why = g_steal_pointer(&lj->call_error);
        if (pd->have_state && pd->state == VIR_DOMAIN_RUNNING &&
            !job->switched) {
            job_failed(job, why);
            return;
        }
        if (!pd->dst_runs) {
            job_failed(job, why);
            return;
        }
        /* The guest runs on the destination and the source is gone or
         * idle: libvirt finished the move despite the error. */
        finish(ld, job);
        return;
    }
    if (!lj->thread_running &&
        (pd->type == -1 || pd->type == VIR_DOMAIN_JOB_NONE)) {
        /* No call of ours to return: the hosts say how it ended. */
        if (pd->dst_runs && (pd->type == -1 ||
                             pd->state != VIR_DOMAIN_RUNNING)) {
            finish(ld, job);
        } else if (pd->have_state && pd->state == VIR_DOMAIN_RUNNING &&
                   !job->switched) {
            job_failed(job, "the migration ended without the guest moving");
        }
    }
}

static gboolean on_poll_timer(gpointer opaque)
{
    Job *job = opaque;
    LvDriver *ld = (LvDriver *)job->d->drv;
    LvJob *lj = LJ(job);
    virDomainPtr dom;
    PollData *pd;
    LvWork *w;

    if (lj->poll_pending || !LH(job->from)->conn) {
        return G_SOURCE_CONTINUE;
    }
    dom = virDomainLookupByName(LH(job->from)->conn, job->vm->name);
    if (!dom && lj->thread_running) {
        return G_SOURCE_CONTINUE; /* the call's return says how it ended */
    }
    pd = g_new0(PollData, 1);
    pd->read_hot_set = job->switched && !lj->hot_set_read &&
                       job_hot_first(job) && dom;
    /* The source's own counters (tracking window, hot set, push): once a
     * second, and at the first poll after the switch (each is a monitor
     * call that queues with libvirt's own). */
    pd->read_info = job_hot_first(job) && dom &&
                    (lj->polls++ % 4 == 0 ||
                     (job->switched && !lj->info_after_switch));
    pd->after_switch = job->switched;
    w = work_new(ld, poll_run, poll_done, LH(job->to)->conn, dom);
    if (dom) {
        virDomainFree(dom);
    } else {
        pd->type = -1;
    }
    w->name = g_strdup(job->vm->name);
    w->job_id = job->id;
    w->data = pd;
    w->data_free = poll_data_free;
    lj->poll_pending = true;
    work_submit(ld, w, false);
    return G_SOURCE_CONTINUE;
}

static void switch_run(LvWork *w)
{
    if (virDomainMigrateStartPostCopy(w->dom, 0) < 0) {
        work_fail(w);
    }
}

static void lv_migrate_switch(PpDriver *drv, Job *job);

static gboolean on_switch_retry(gpointer opaque)
{
    Job *job = opaque;

    LJ(job)->switch_retry = 0;
    lv_migrate_switch(job->d->drv, job);
    return G_SOURCE_REMOVE;
}

static void switch_done(LvDriver *ld, LvWork *w)
{
    Job *job = live_job(ld, w->job_id);

    if (!job || w->rc == 0 || job->aborting || job->switched) {
        return;
    }
    g_free(LJ(job)->switch_error);
    LJ(job)->switch_error = g_strdup(w->err);
    /* libvirt refuses until its migration job reached QEMU: try again
     * as long as the move is in pre-copy (finish() reports a move that
     * completed without switching), with one warning on the way. */
    if (++LJ(job)->switch_tries == SWITCH_TRIES) {
        pp_daemon_event(ld->d, "warning", job->vm->name,
                        "virDomainMigrateStartPostCopy refused %d times: "
                        "%s; still trying", SWITCH_TRIES, w->err);
    }
    if (job->state == JOB_PRECOPY) {
        LJ(job)->switch_retry = g_timeout_add(200, on_switch_retry, job);
    }
}

static void lv_migrate_switch(PpDriver *drv, Job *job)
{
    LvDriver *ld = (LvDriver *)drv;
    virDomainPtr dom = vm_dom(job->from, job->vm->name);
    LvWork *w;

    if (!dom) {
        return;
    }
    w = work_new(ld, switch_run, switch_done, NULL, dom);
    virDomainFree(dom);
    w->job_id = job->id;
    work_submit(ld, w, false);
}

/* Both sides done: the destination's counters, then the job is done. */
typedef struct FinishData {
    json_object *info;
} FinishData;

static void finish_data_free(gpointer p)
{
    FinishData *f = p;

    json_object_put(f->info);
    g_free(f);
}

static void finish_run(LvWork *w)
{
    FinishData *f = w->data;
    virDomainPtr dd = virDomainLookupByName(w->conn, w->name);
    g_autofree char *err = NULL;

    if (dd) {
        f->info = qemu_command(dd, "query-migrate", NULL, &err);
        virDomainFree(dd);
    }
}

static void finish_done(LvDriver *ld, LvWork *w)
{
    FinishData *f = w->data;
    Job *job = live_job(ld, w->job_id);

    if (!job || job->aborting) {
        return;
    }
    if (f->info) {
        g_autoptr(GError) perr = NULL;

        if (!pp_postcopy_stats_update(&job->pc, f->info, &perr)) {
            pp_daemon_event(ld->d, "protocol-error", job->vm->name,
                            "destination QEMU: %s (ignored)", perr->message);
        }
    }
    if (LVM(job->vm)) {
        LVM(job->vm)->have_last = false;
    }
    job_completed(job);
}

static void finish(LvDriver *ld, Job *job)
{
    LvWork *w;

    if (LJ(job)->finishing) {
        return; /* the call's return and a poll both saw the end */
    }
    LJ(job)->finishing = true;
    if (job->switch_requested && !job->switched &&
        job->mode.kind != PP_MIG_PRECOPY) {
        /* Pre-copy converged before libvirt took the switch. */
        pp_daemon_event(ld->d, "warning", job->vm->name,
                        "job %" G_GINT64_FORMAT ": post-copy was asked for "
                        "but the move completed in pre-copy (%d switch "
                        "attempts%s%s)", job->id, LJ(job)->switch_tries + 1,
                        LJ(job)->switch_error ? "; libvirt: " : "",
                        LJ(job)->switch_error ? LJ(job)->switch_error : "");
    }
    if (!job->switched && job->t_resume == 0) {
        job->t_resume = pp_wall_now();
    }
    if (!job->vm->has_hot_first || !LH(job->to)->conn) {
        job_completed(job);
        return;
    }
    w = work_new(ld, finish_run, finish_done, LH(job->to)->conn, NULL);
    w->name = g_strdup(job->vm->name);
    w->job_id = job->id;
    w->data = g_new0(FinishData, 1);
    w->data_free = finish_data_free;
    work_submit(ld, w, false);
}

/* ---- aborting ---- */

typedef struct StateData {
    int state, reason;
    bool found;
} StateData;

static void state_run(LvWork *w)
{
    StateData *s = w->data;
    virDomainPtr dom = virDomainLookupByName(w->conn, w->name);

    if (dom) {
        s->found = virDomainGetState(dom, &s->state, &s->reason, 0) == 0;
        virDomainFree(dom);
    }
}

static void state_done(LvDriver *ld, LvWork *w)
{
    StateData *s = w->data;
    Job *job = live_job(ld, w->job_id);

    if (!job) {
        return;
    }
    LJ(job)->checking = false;
    /* Before the switch libvirt resumes the source of a failed or
     * cancelled migration itself; a source that does not run now may
     * have handed the guest over: never resumed here. */
    job_aborted(job, s->found && s->state == VIR_DOMAIN_RUNNING);
}

static void abort_check(LvDriver *ld, Job *job)
{
    LvJob *lj = LJ(job);
    LvWork *w;

    if (lj->checking || !LH(job->from)->conn) {
        if (!LH(job->from)->conn) {
            job_aborted(job, false);
        }
        return;
    }
    lj->checking = true;
    w = work_new(ld, state_run, state_done, LH(job->from)->conn, NULL);
    w->name = g_strdup(job->vm->name);
    w->job_id = job->id;
    w->data = g_new0(StateData, 1);
    w->data_free = g_free;
    work_submit(ld, w, false);
}

static void abortjob_run(LvWork *w)
{
    if (virDomainAbortJob(w->dom) < 0) {
        work_fail(w);
    }
}

static void abortjob_done(LvDriver *ld, LvWork *w)
{
    Job *job = live_job(ld, w->job_id);

    if (job && w->rc < 0 && !LJ(job)->thread_running) {
        abort_check(ld, job);
    }
    /* Else the migration call returns and migrate_done checks. */
}

static void lv_migrate_abort(PpDriver *drv, Job *job)
{
    LvDriver *ld = (LvDriver *)drv;
    LvJob *lj = LJ(job);

    if (lj->switch_retry) {
        g_source_remove(lj->switch_retry);
        lj->switch_retry = 0;
    }
    if (lj->thread_running) {
        virDomainPtr dom = vm_dom(job->from, job->vm->name);
        if (dom) {
            LvWork *w = work_new(ld, abortjob_run, abortjob_done, NULL, dom);
            virDomainFree(dom);
            w->job_id = job->id;
            work_submit(ld, w, false);
            return;
        }
    }
    abort_check(ld, job);
}

/* ---- post-copy pause and recovery ---- */

static void pause_run(LvWork *w)
{
    if (virDomainAbortJobFlags(w->dom, VIR_DOMAIN_ABORT_JOB_POSTCOPY) < 0) {
        work_fail(w);
    }
}

static void pause_done(LvDriver *ld, LvWork *w)
{
    Job *job = live_job(ld, w->job_id);

    if (!job) {
        return;
    }
    LJ(job)->pause_pending = false;
    if (w->rc < 0) {
        job->operator_paused = false;
        pp_daemon_event(ld->d, "warning", job->vm->name,
                        "virDomainAbortJobFlags(POSTCOPY): %s", w->err);
    }
    /* Paused: the polls see the source's post-copy-failed state. */
}

static void lv_migrate_pause(PpDriver *drv, Job *job)
{
    LvDriver *ld = (LvDriver *)drv;
    virDomainPtr dom = vm_dom(job->from, job->vm->name);
    LvWork *w;

    if (!dom || LJ(job)->pause_pending) {
        if (!dom) {
            job->operator_paused = false;
            pp_daemon_event(ld->d, "warning", job->vm->name, "cannot pause: "
                            "no domain on %s", job->from->name);
        }
        return;
    }
    LJ(job)->pause_pending = true;
    w = work_new(ld, pause_run, pause_done, NULL, dom);
    virDomainFree(dom);
    w->job_id = job->id;
    work_submit(ld, w, false);
}

static void recover_done(LvDriver *ld, LvWork *w)
{
    Job *job = live_job(ld, w->job_id);

    if (!job) {
        return;
    }
    LJ(job)->thread_running = false;
    if (job->aborting) {
        return;
    }
    if (w->rc == 0) {
        finish(ld, job);    /* recovered and completed in one call */
    } else if (job->state == JOB_PAUSED) {
        job_paused(job, w->err);
    }
    /* Else it recovered and failed again: the polls see it paused. */
}

/*
 * The same migration call again with VIR_MIGRATE_POSTCOPY_RESUME: libvirt
 * has the destination listen anew and the source resume onto it, and the
 * call returns when the move completes (libvirt >= 8.5).
 */
static void lv_migrate_recover(PpDriver *drv, Job *job)
{
    LvDriver *ld = (LvDriver *)drv;
    LvJob *lj = LJ(job);
    virDomainPtr dom;
    MigData *m;
    LvWork *w;

    if (lj->thread_running) {
        job_paused(job, "the failed migration call has not returned yet");
        return;
    }
    if (!LH(job->from)->conn || !LH(job->to)->conn) {
        job_paused(job, "a host of the move is not reachable");
        return;
    }
    dom = virDomainLookupByName(LH(job->from)->conn, job->vm->name);
    if (!dom) {
        job_failed(job, "the source domain is gone: nothing to recover");
        return;
    }
    m = mig_data_new(job);
    m->flags |= VIR_MIGRATE_POSTCOPY | VIR_MIGRATE_POSTCOPY_RESUME;
    w = work_new(ld, migrate_run, recover_done, LH(job->from)->conn, dom);
    virDomainFree(dom);
    w->name = g_strdup(job->vm->name);
    w->job_id = job->id;
    w->data = m;
    w->data_free = mig_data_free;
    lj->thread_running = true;
    if (!lj->poll_source) {
        lj->poll_source = g_timeout_add(POLL_MS, on_poll_timer, job);
    }
    work_submit(ld, w, true);
}

static void lv_job_release(PpDriver *drv, Job *job)
{
    LvJob *lj = LJ(job);

    if (!lj) {
        return;
    }
    if (lj->poll_source) {
        g_source_remove(lj->poll_source);
    }
    if (lj->switch_retry) {
        g_source_remove(lj->switch_retry);
    }
    g_free(lj->call_error);
    g_free(lj->switch_error);
    g_free(lj);
    job->priv = NULL;
}

/* ---- events ---- */

static void on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event,
                         int detail, void *opaque)
{
    Host *h = opaque;
    LvHost *lh = LH(h);
    PpDaemon *d;
    Vm *vm;
    Job *job;

    if (!lh || lh->conn != conn) {
        return;
    }
    d = lh->ld->d;
    vm = pp_daemon_vm(d, virDomainGetName(dom));
    if (!vm || !vm->priv) {
        return;
    }
    job = vm->job && vm->job->priv && job_is_active(vm->job) ? vm->job :
          NULL;
    /* The switchover, only as seen from its start (not a switch a
     * previous daemon saw, nor the events of a recovery). */
    if (job && h == job->from && event == VIR_DOMAIN_EVENT_SUSPENDED &&
        (detail == VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY ||
         detail == VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED) && !job->t_stop &&
        !job->switched) {
        job->t_stop = pp_wall_now();
    }
    if (job && h == job->from && event == VIR_DOMAIN_EVENT_SUSPENDED &&
        detail == VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY) {
        if (job->state == JOB_STARTING) {
            job_migrating(job);
        }
        job_switched(job);
    }
    if (job && h == job->to && event == VIR_DOMAIN_EVENT_RESUMED &&
        (detail == VIR_DOMAIN_EVENT_RESUMED_POSTCOPY ||
         detail == VIR_DOMAIN_EVENT_RESUMED_MIGRATED) && job->t_stop &&
        !job->t_resume) {
        job->t_resume = pp_wall_now();
    }
    if (!vm->job && h == vm->host && event == VIR_DOMAIN_EVENT_STOPPED &&
        detail != VIR_DOMAIN_EVENT_STOPPED_MIGRATED) {
        static const char *const why[] = {
            "shut down", "destroyed", "crashed", "migrated", "saved",
            "failed", "snapshot",
        };
        g_autofree char *msg = g_strdup_printf(
            "domain %s on %s", detail >= 0 && detail < 7 ? why[detail] :
            "stopped", h->name);
        pp_daemon_vm_lost(d, vm, msg);
    }
}

/* ---- VMs ---- */

static void lv_vm_describe(PpDriver *drv, Vm *vm, json_object *o)
{
    json_object_object_add(o, "has-instant",
                           json_object_new_boolean(vm->has_instant));
    json_object_object_add(o, "has-hot-first",
                           json_object_new_boolean(vm->has_hot_first));
}

static void lv_vm_release(PpDriver *drv, Vm *vm)
{
    g_free(vm->priv);
    vm->priv = NULL;
}

/* ---- adopting moves a previous run left ---- */

/*
 * @row's move, found by a new daemon.  Peer-to-peer, the source libvirtd
 * carries a migration on after the daemon that asked for it went away:
 * a job still running there is adopted and watched until the hosts say
 * how it ended; one that is over is recorded as what the hosts show.
 */
static void settle_stale(LvDriver *ld, const PpJobRow *row)
{
    PpDaemon *d = ld->d;
    Vm *vm = pp_daemon_vm(d, row->vm);
    Host *from = pp_daemon_host(d, row->from), *to = pp_daemon_host(d, row->to);
    virDomainPtr sdom, ddom;
    virDomainJobInfo info = { 0 };
    int sst = -1, sreason = 0, dst_state = -1;
    bool src_job = false;

    if (!vm || !from || !to || !LH(from)->conn || !LH(to)->conn) {
        return; /* the daemon marks it abandoned */
    }
    sdom = virDomainLookupByName(LH(from)->conn, row->vm);
    ddom = virDomainLookupByName(LH(to)->conn, row->vm);
    if (sdom) {
        virDomainGetState(sdom, &sst, &sreason, 0);
        src_job = virDomainGetJobInfo(sdom, &info) == 0 &&
                  info.type == VIR_DOMAIN_JOB_UNBOUNDED;
        virDomainFree(sdom);
    }
    if (ddom) {
        virDomainGetState(ddom, &dst_state, NULL, 0);
        virDomainFree(ddom);
    }
    if (sst == VIR_DOMAIN_PAUSED &&
        sreason == VIR_DOMAIN_PAUSED_POSTCOPY_FAILED) {
        /* Post-copy paused while the daemon was away: recover it. */
        LvJob *lj = g_new0(LvJob, 1);
        Job *job;

        lj->adopted = true;
        vm->host = from;
        job = job_adopt(d, row, vm, from, to, JOB_PAUSED, true, lj);
        g_ptr_array_remove(d->stale_jobs, (gpointer)row);
        lj->poll_source = g_timeout_add(POLL_MS, on_poll_timer, job);
        return;
    }
    if (src_job) {
        bool post = sst == VIR_DOMAIN_PAUSED &&
                    sreason == VIR_DOMAIN_PAUSED_POSTCOPY;
        LvJob *lj = g_new0(LvJob, 1);
        Job *job;

        lj->adopted = true;
        vm->host = from;
        job = job_adopt(d, row, vm, from, to, post ? JOB_POSTCOPY :
                        JOB_PRECOPY, post, lj);
        g_ptr_array_remove(d->stale_jobs, (gpointer)row);
        lj->poll_source = g_timeout_add(POLL_MS, on_poll_timer, job);
        return;
    }
    if (dst_state == VIR_DOMAIN_RUNNING && sst != VIR_DOMAIN_RUNNING) {
        vm->host = to;
        pp_daemon_end_stale_job(d, row, "done", "finished while the daemon "
                                "was away");
    } else if (sst == VIR_DOMAIN_RUNNING) {
        vm->host = from;
        pp_daemon_end_stale_job(d, row, "failed", "the guest runs on the "
                                "source; the migration ended while the "
                                "daemon was away");
    }
}

/* A domain paused by a migration is the other side of a running guest
 * (an incoming destination, or a source that handed over). */
static bool paused_by_migration(int state, int reason)
{
    return state == VIR_DOMAIN_PAUSED &&
           (reason == VIR_DOMAIN_PAUSED_MIGRATION ||
            reason == VIR_DOMAIN_PAUSED_POSTCOPY ||
            reason == VIR_DOMAIN_PAUSED_POSTCOPY_FAILED ||
            reason == VIR_DOMAIN_PAUSED_STARTING_UP);
}

/*
 * Every matching domain on every reachable host (startup: synchronous).
 * Where a guest is being migrated its running side names its host; a
 * side paused by the migration counts only when no running one exists.
 */
static void discover(LvDriver *ld)
{
    PpDaemon *d = ld->d;

    for (int pass = 0; pass < 2; pass++) {
        for (guint i = 0; i < d->hosts->len; i++) {
            Host *h = d->hosts->pdata[i];
            virDomainPtr *doms = NULL;
            int n = LH(h)->conn ? virConnectListAllDomains(
                LH(h)->conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE) : 0;

            for (int k = 0; k < n; k++) {
                const char *name = virDomainGetName(doms[k]);
                int state = 0, reason = 0;
                bool match = pp_name_matches(d->cfg->domains, name);
                virDomainInfo info;

                if (match && d->cfg->require_metadata) {
                    char *meta = virDomainGetMetadata(
                        doms[k], VIR_DOMAIN_METADATA_ELEMENT, PP_XMLNS,
                        VIR_DOMAIN_AFFECT_LIVE);
                    match = meta != NULL;
                    free(meta);
                }
                g_hash_table_replace(ld->matches, g_strdup(name),
                                     GINT_TO_POINTER(match ? 1 : 2));
                if (!match || pp_daemon_vm(d, name) ||
                    virDomainGetState(doms[k], &state, &reason, 0) < 0 ||
                    (pass == 0 && paused_by_migration(state, reason)) ||
                    virDomainGetInfo(doms[k], &info) < 0) {
                    virDomainFree(doms[k]);
                    continue;
                }
                Vm *vm = pp_daemon_add_vm(d, name, h,
                                          MAX(info.maxMem / 1024, 1),
                                          MAX(info.nrVirtCpu, 1),
                                          g_new0(LvVm, 1));
                pp_daemon_event(d, "vm-found", name, "on %s (%u vCPUs, %"
                                G_GUINT64_FORMAT " MiB, %s)", h->name,
                                vm->vcpus, vm->mem_mib,
                                state == VIR_DOMAIN_RUNNING ? "running" :
                                "paused");
                probe_vm(ld, vm, h);
                virDomainFree(doms[k]);
            }
            free(doms);
        }
    }
}

/* ---- life cycle ---- */

static void lv_close(PpDriver *drv, bool stop_vms)
{
    LvDriver *ld = (LvDriver *)drv;
    PpDaemon *d = ld->d;

    /* The domains are the admin's: they keep running whatever is asked,
     * and a peer-to-peer migration goes on in the source libvirtd. */
    g_atomic_int_set(&ld->shared->closed, 1);
    if (ld->reconnect_source) {
        g_source_remove(ld->reconnect_source);
    }
    for (guint i = 0; i < d->jobs->len; i++) {
        lv_job_release(drv, d->jobs->pdata[i]);
    }
    for (guint i = 0; i < d->vms->len; i++) {
        lv_vm_release(drv, d->vms->pdata[i]);
    }
    for (guint i = 0; i < d->hosts->len; i++) {
        Host *h = d->hosts->pdata[i];
        LvHost *lh = LH(h);
        if (!lh) {
            continue;
        }
        if (lh->conn) {
            if (lh->lifecycle_cb >= 0) {
                virConnectDomainEventDeregisterAny(lh->conn,
                                                   lh->lifecycle_cb);
            }
            virConnectUnregisterCloseCallback(lh->conn, on_conn_closed);
            virConnectClose(lh->conn);
        }
        g_free(lh);
        h->priv = NULL;
    }
    /* Calls in flight are not waited for (a dead host holds one for the
     * keepalive's 15 s); their results are dropped. */
    g_thread_pool_free(ld->pool, TRUE, FALSE);
    if (ld->matches) {
        g_hash_table_unref(ld->matches);
    }
    shared_unref(ld->shared);
    g_free(ld);
}

static PpDriver *lv_open(PpDaemon *d, GError **errp)
{
    static gsize once;
    LvDriver *ld = g_new0(LvDriver, 1);

    if (g_once_init_enter(&once)) {
        virSetErrorFunc(NULL, lv_quiet);
        /* libvirt's events on the GLib main loop the daemon runs. */
        gvir_event_register();
        g_once_init_leave(&once, 1);
    }
    ld->parent.ops = &pp_driver_libvirt;
    ld->parent.d = ld->d = d;
    d->drv = &ld->parent;
    ld->shared = g_new0(LvShared, 1);
    ld->shared->refs = 1;
    ld->matches = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    ld->pool = g_thread_pool_new(pool_run, NULL, 8, FALSE, NULL);
    for (guint i = 0; i < d->hosts->len; i++) {
        Host *h = d->hosts->pdata[i];
        LvHost *lh = g_new0(LvHost, 1);
        virConnectPtr conn;
        virNodeInfo ni;

        lh->ld = ld;
        lh->h = h;
        lh->cfg = pp_config_host(d->cfg, h->name);
        lh->lifecycle_cb = -1;
        lh->have_set = lh->cfg->cpus &&
                       pp_cpuset_parse(lh->cfg->cpus, &lh->set, NULL);
        h->priv = lh;
        h->addr = g_strdup(lh->cfg->migration_address);
        h->up = false;
        conn = virConnectOpen(lh->cfg->uri);
        if (!conn) {
            pp_daemon_event(d, "warning", NULL, "cannot reach host %s (%s): "
                            "%s; trying again every %d s", h->name,
                            lh->cfg->uri, virGetLastErrorMessage(),
                            RECONNECT_S);
            if (!ld->reconnect_source) {
                ld->reconnect_source = g_timeout_add_seconds(
                    RECONNECT_S, on_reconnect_timer, ld);
            }
            continue;
        }
        connected(ld, h, conn);
        virConnectRegisterCloseCallback(conn, on_conn_closed, h, NULL);
        if (virNodeGetInfo(conn, &ni) == 0) {
            if (!lh->have_set) {
                h->ncpus = ni.cpus;
            }
            if (!h->mem_mib) {
                h->mem_mib = ni.memory / 1024;
            }
        }
    }
    discover(ld);
    for (guint i = 0; d->stale_jobs && i < d->stale_jobs->len;) {
        const PpJobRow *row = d->stale_jobs->pdata[i];
        guint before = d->stale_jobs->len;
        settle_stale(ld, row);
        if (d->stale_jobs->len == before) {
            i++;
        }
    }
    return &ld->parent;
}

const PpDriverOps pp_driver_libvirt = {
    .name = "libvirt",
    .description = "hosts reached through libvirt URIs; VMs are the "
                   "running domains found there",
    .open = lv_open,
    .sample = lv_sample,
    .migrate_start = lv_migrate_start,
    .migrate_switch = lv_migrate_switch,
    .migrate_abort = lv_migrate_abort,
    .migrate_pause = lv_migrate_pause,
    .migrate_recover = lv_migrate_recover,
    .job_release = lv_job_release,
    .vm_describe = lv_vm_describe,
    .vm_release = lv_vm_release,
    .close = lv_close,
};
