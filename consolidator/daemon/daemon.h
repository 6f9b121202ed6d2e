/*
 * The consolidator daemon's internals: the cluster it manages (hosts and
 * VMs of the local driver), migration jobs, sampling and decisions.
 *
 * Ownership: a PpDaemon owns its hosts, VMs and jobs.  A Vm owns its QEMU
 * process and QMP connection; during a move the Job owns the destination
 * process and connection until the switch to it is complete.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef PP_DAEMON_H
#define PP_DAEMON_H

#include <glib.h>
#include <json-c/json.h>
#include <sched.h>
#include <stdbool.h>

#include "config.h"
#include "launcher.h"
#include "migqmp.h"
#include "policy.h"
#include "qmp.h"
#include "store.h"

typedef struct PpDaemon PpDaemon;
typedef struct Job Job;

typedef enum VmState {
    VM_RUNNING,     /* guest runs in vm->proc */
    VM_MIGRATING,   /* a job is moving it */
    VM_LOST,        /* its QEMU died; nothing runs it */
    VM_BROKEN,      /* a post-copy move failed after the switch: the guest
                     * is stuck between two QEMUs (kept for recovery) */
} VmState;

typedef struct Host {
    const PpHostConfig *cfg;
    cpu_set_t set;
    char *netns;
    char *addr;             /* address inside the emulated network */
    bool have_last;
    guint64 last_busy, last_total;
    double cpu;             /* last sample */
} Host;

typedef struct Vm {
    PpDaemon *d;
    const PpVmSpec *spec;
    Host *host;             /* where the guest runs (the source during a move) */
    PpVm *proc;
    PpQmp *qmp;
    GArray *vcpu_tids;      /* pid_t of vm->proc's vCPU threads */
    VmState state;
    Job *job;               /* the move in flight, if any */
    GHashTable *last_ns;    /* "pid/tid" -> guint64 run time, for deltas */
    bool has_instant;       /* its QEMU has x-postcopy-instant (schema) */
    bool has_hot_first;     /* ... and x-postcopy-hot-first, hot sets */
    json_object *hot_set;   /* from its last move's source, for the next */
    gint64 last_sample_us;
    double cpu, proc_cpu;   /* last sample */
} Vm;

typedef enum JobState {
    JOB_STARTING,   /* destination QEMU starting */
    JOB_SETUP,      /* capabilities, parameters, incoming, migrate */
    JOB_PRECOPY,    /* migrating; the guest still runs on the source */
    JOB_POSTCOPY,   /* switched: the guest runs on the destination and
                     * faults pages from the source, which must never be
                     * resumed */
    JOB_COMPLETING, /* source sent everything; waiting for the destination */
    JOB_DONE,       /* the destination owns the guest; source retired */
    JOB_FAILED,     /* failed before the switch: guest still on the source */
    JOB_CANCELLED,  /* cancelled before the switch: guest still on the source */
    JOB_BROKEN,     /* failed after the switch: guest stuck; needs recovery */
    JOB__MAX,
} JobState;

struct Job {
    PpDaemon *d;
    gint64 id;
    Vm *vm;
    Host *from, *to;
    PpMigMode mode;
    JobState state;
    char *reason;
    PpVm *dst_proc;
    PpQmp *dst_qmp;
    GArray *dst_vcpu_tids;
    int setup_pending;
    bool setup_failed;
    bool src_completed, dst_completed;
    bool switch_requested;  /* migrate-start-postcopy was sent */
    bool switched;          /* QEMU reported postcopy-active (or the
                             * destination resumed): no way back */
    bool aborting;          /* asking the source whether it still runs
                             * the guest before ending the job */
    JobState abort_end;
    bool src_poll_pending, dst_poll_pending;
    guint poll_source, postcopy_source;
    double t_start, t_stop, t_resume, t_end;  /* wall clock, seconds */
    gint64 bytes, postcopy_requests;
    PpPostcopyStats pc;     /* our QEMU's counters, both sides */
    int finish_pending;     /* last queries before retiring the source */
    char *error;
};

struct PpDaemon {
    PpConfig *cfg;
    PpStore *store;
    const PpPolicyOps *policy;
    void *policy_state;
    GMainLoop *loop;
    GPtrArray *hosts;       /* Host * */
    GPtrArray *vms;         /* Vm * */
    GPtrArray *jobs;        /* Job *, every job of this run */
    double last_relocation; /* wall clock of the last move started/ended */
    double started;
    char *net_helper;
    char *run_dir;
    guint sample_source, decide_source, prune_source;
    int listen_fd;
    guint listen_source;
    int exit_code;
    char *last_plan_text;   /* to record only changes of the plan's notes */
};

const char *job_state_name(JobState s);
/* The host whose CPU runs the guest now: the destination once a move
 * switched (post-copy), else vm->host. */
Host *vm_guest_host(const Vm *vm);
bool job_is_active(const Job *job);

/* daemon.c */
double pp_wall_now(void);
void pp_daemon_event(PpDaemon *d, const char *kind, const char *vm,
                     const char *fmt, ...) G_GNUC_PRINTF(4, 5);
Host *pp_daemon_host(PpDaemon *d, const char *name);
Vm *pp_daemon_vm(PpDaemon *d, const char *name);
guint pp_daemon_active_jobs(PpDaemon *d);
/* Start the VM's QEMU on @host (a destination when @incoming). */
PpVm *pp_daemon_spawn(PpDaemon *d, Vm *vm, Host *host, bool incoming,
                      const char *tag, GError **errp);
/* Attach @qmp to the loop with the daemon's handlers for @vm. */
void pp_daemon_attach_qmp(PpDaemon *d, Vm *vm, PpQmp *qmp);
/* Learn from @qmp's schema which postpack QMP extensions it has (async). */
void pp_daemon_probe_features(PpDaemon *d, Vm *vm, PpQmp *qmp);
/* Refresh @tids with the vCPU thread ids @qmp reports (async). */
void pp_daemon_query_vcpus(PpDaemon *d, PpQmp *qmp, GArray *tids);
/* The cluster as the policy sees it now. */
PpPlan *pp_daemon_plan(PpDaemon *d);

/* job.c */
Job *job_start(PpDaemon *d, Vm *vm, Host *to, const PpMigMode *mode,
               const char *reason, GError **errp);
void job_on_event(Job *job, PpQmp *from, const char *name, json_object *data,
                  gint64 time_us);
void job_on_closed(Job *job, PpQmp *from, const GError *why);
/* Cancel a move that has not switched yet; false with an error after the
 * switch (the guest can no longer go back) or when it is over. */
bool job_cancel(Job *job, GError **errp);
void job_free(Job *job);
json_object *job_to_json(const Job *job);

/* control.c: the unix-socket control protocol */
bool pp_control_listen(PpDaemon *d, GError **errp);
void pp_control_close(PpDaemon *d);

int pp_daemon_run(const char *config_path, bool daemonize);

#endif
