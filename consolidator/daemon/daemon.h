/*
 * The consolidator daemon's internals: the cluster it manages (hosts and
 * VMs, whatever the driver), migration jobs, sampling and decisions.
 *
 * Ownership: a PpDaemon owns its hosts, VMs and jobs, and its driver; the
 * driver owns what hangs off their priv pointers (a VM's QEMU process and
 * QMP connection, a job's destination) and frees it in vm_release and
 * job_release.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef PP_DAEMON_H
#define PP_DAEMON_H

#include <glib.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <sys/types.h>

#include "config.h"
#include "driver.h"
#include "migqmp.h"
#include "policy.h"
#include "qmp.h"
#include "store.h"

typedef struct PpDaemon PpDaemon;
typedef enum VmState {
    VM_RUNNING,     /* the guest runs on vm->host */
    VM_MIGRATING,   /* a job is moving it */
    VM_LOST,        /* its QEMU died; nothing runs it */
    VM_BROKEN,      /* a post-copy move failed after the switch: the guest
                     * is stuck between two QEMUs (kept for recovery) */
} VmState;

typedef enum HostPower {
    HOST_ON,
    HOST_SUSPENDING,        /* its power_off command runs */
    HOST_OFF,               /* suspended: runs nothing, takes no move */
    HOST_WAKING,            /* power_on ran (or runs); up after wake_delay */
} HostPower;

struct Host {
    PpDaemon *d;
    char *name;
    char *where;            /* how the driver reaches it: a CPU list, a URI */
    guint ncpus;
    guint64 mem_mib;        /* memory for VMs; 0: unlimited */
    char *addr;             /* migration address, for the driver */
    bool up;                /* reachable; false: left out of decisions */
    double cpu;             /* last sample, % of its CPUs */
    double mem_used_mib, mem_total_mib; /* last sample; NAN: unknown */
    /* power (power.c) */
    HostPower power;
    double power_since;
    char *power_off_cmd, *power_on_cmd; /* NULL: emulated (local driver) */
    const PpPowerModel *watts; /* its power model; NULL: unknown */
    double wake_delay;
    double min_awake;       /* a plan suspends it only this long after a wake */
    bool woken;             /* ON since a wake (not since the start) */
    bool hold_said;         /* the min_awake hold was reported */
    GPid power_pid;
    guint power_watch, power_timer;
    bool power_warned;      /* a plan's action it cannot do was reported */
    void *priv;             /* the driver's */
};

struct Vm {
    PpDaemon *d;
    char *name;
    guint64 mem_mib;
    guint vcpus;
    Host *host;             /* where the guest runs (the source during a move) */
    VmState state;
    Job *job;               /* the move in flight, if any */
    bool has_instant;       /* its QEMU has x-postcopy-instant (schema) */
    bool has_hot_first;     /* ... and x-postcopy-hot-first, hot sets */
    json_object *hot_set;   /* from its last move's source, for the next */
    double cpu, proc_cpu;   /* last sample */
    PpVmStats last;         /* last sample, all of it */
    void *priv;             /* the driver's */
};

typedef enum JobState {
    JOB_STARTING,   /* the driver prepares the destination */
    JOB_PRECOPY,    /* migrating; the guest still runs on the source */
    JOB_POSTCOPY,   /* switched: the guest runs on the destination and
                     * faults pages from the source, which must never be
                     * resumed */
    JOB_COMPLETING, /* source sent everything; waiting for the destination */
    JOB_PAUSED,     /* switched, and the post-copy channel is down: both
                     * QEMUs wait (postcopy-paused) for a recovery on a
                     * new channel; the guest stalls on remote faults */
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
    bool switch_requested;  /* post-copy was asked for (or is automatic) */
    bool switched;          /* the guest ran on the destination: no way
                             * back */
    bool aborting;          /* the driver is stopping the move */
    JobState abort_end;
    guint postcopy_source;
    /* Post-copy recovery (PAUSED): */
    bool operator_paused;   /* paused on request: recover only on request */
    bool recovering;        /* the driver tries a recovery now */
    guint recover_source;   /* the next automatic attempt */
    guint recover_attempts; /* since the last pause */
    double t_paused;        /* when it paused (wall clock) */
    double recover_until;   /* no automatic attempt after this */
    gint64 pauses, recoveries;
    double t_start, t_stop, t_resume, t_end;  /* wall clock, seconds */
    gint64 bytes, postcopy_requests;
    PpPostcopyStats pc;     /* our QEMU's counters, both sides */
    char *error;
    void *priv;             /* the driver's */
};

struct PpDaemon {
    PpConfig *cfg;
    PpStore *store;
    const PpPolicyOps *policy;
    void *policy_state;
    PpDriver *drv;
    GMainLoop *loop;
    GPtrArray *hosts;       /* Host * */
    GPtrArray *vms;         /* Vm * */
    GPtrArray *jobs;        /* Job *, every job of this run */
    double last_relocation; /* wall clock of the last move started/ended */
    double started;
    char *run_dir;
    guint sample_source, decide_source, prune_source;
    int listen_fd;          /* the control socket */
    guint listen_source;
    int query_fd;           /* the read-only query socket, or -1 */
    guint query_source;
    gid_t control_gid;      /* control_group's id, or (gid_t)-1 */
    int exit_code;
    bool stop_vms;          /* on exit, stop the driver's VMs too */
    GPtrArray *stale_jobs;  /* PpJobRow *: unfinished moves of a previous
                             * run, until the driver settled them */
    int lock_fd;            /* flock on STATE_DIR/lock: one instance */
    gpointer metrics;       /* SoupServer of /metrics, or NULL */
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

/* Host power (power.c): suspend an empty host; wake one.  False with an
 * error when it cannot be done now (nothing changed). */
bool pp_host_power_off(PpDaemon *d, Host *h, const char *reason,
                       GError **errp);
bool pp_host_power_on(PpDaemon *d, Host *h, const char *reason,
                      GError **errp);
const char *pp_host_power_name(HostPower p);
/* Stop watching its command and timer (the daemon is closing). */
void pp_host_power_release(Host *h);
Vm *pp_daemon_vm(PpDaemon *d, const char *name);
guint pp_daemon_active_jobs(PpDaemon *d);
/* The cluster as the policy sees it now. */
PpPlan *pp_daemon_plan(PpDaemon *d);

/* Called by drivers (see driver.h). */
/* A VM the driver manages now, running on @host; @priv is the driver's. */
Vm *pp_daemon_add_vm(PpDaemon *d, const char *name, Host *host,
                     guint64 mem_mib, guint vcpus, void *priv);
/* The newest move of @vm a previous run left unfinished, or NULL: the
 * driver adopts it (job_adopt) or ends it (pp_daemon_end_stale_job). */
const PpJobRow *pp_daemon_stale_job(PpDaemon *d, const char *vm);
void pp_daemon_end_stale_job(PpDaemon *d, const PpJobRow *row,
                             const char *phase, const char *detail);
/* Its guest is gone (the process died): nothing runs it any more. */
void pp_daemon_vm_lost(PpDaemon *d, Vm *vm, const char *why);
/* @cpu: % of the host's CPUs; memory in MiB, NAN when not measured. */
void pp_daemon_sample_host(PpDaemon *d, Host *h, double t, double cpu,
                           double mem_used_mib, double mem_total_mib);
/* st->mem_mib is filled in from the VM. */
void pp_daemon_sample_vm(PpDaemon *d, Vm *vm, double t, PpVmStats *st);

/* job.c */
Job *job_start(PpDaemon *d, Vm *vm, Host *to, const PpMigMode *mode,
               const char *reason, GError **errp);
/* Cancel a move that has not switched yet; false with an error after the
 * switch (the guest can no longer go back) or when it is over. */
bool job_cancel(Job *job, GError **errp);
void job_free(Job *job);
json_object *job_to_json(const Job *job);

/* Our QEMU's extensions for a move, the same whatever the driver: */
/* is the hot-first push on (post-copy, our QEMU, hot_first = true)? */
bool job_hot_first(const Job *job);
/* x-postcopy-instant and x-postcopy-hot-first as the move wants them,
 * for those its QEMU has: appended to @caps (room for 2); how many. */
size_t job_our_caps(const Job *job, PpMigCap *caps);
/* The source's x- parameters of the hot-first push, added to @params. */
void job_our_source_params(const Job *job, json_object *params);

/*
 * A move a previous daemon left in flight (@row, from the store), found
 * still running by the driver and carried on from @state; @priv is the
 * driver's part.  The driver then reports as for a job it started.
 */
Job *job_adopt(PpDaemon *d, const PpJobRow *row, Vm *vm, Host *from,
               Host *to, JobState state, bool switched, void *priv);

/* What the driver carrying a job out reports (see driver.h). */
/* The migration runs (the guest still on the source). */
void job_migrating(Job *job);
/* The guest runs on the destination: no way back. */
void job_switched(Job *job);
/* The source sent everything. */
void job_source_done(Job *job);
/* The destination owns the guest and the driver retired the source
 * (vm->host is still the source: the job moves it). */
void job_completed(Job *job);
/* The migration failed (the job then asks the driver to abort it). */
void job_failed(Job *job, const char *why);
/* The driver's answer to migrate_abort. */
void job_aborted(Job *job, bool guest_on_source);
/* After the switch the post-copy channel went down (or a pause was asked
 * for, or a recovery attempt failed) and both QEMUs wait for a recovery. */
void job_paused(Job *job, const char *why);
/* A recovery worked: post-copy runs again on a new channel. */
void job_recovered(Job *job);

/* The operator's pause and recovery (control socket). */
bool job_pause(Job *job, GError **errp);
bool job_recover(Job *job, GError **errp);

/* metrics.c: Prometheus text on GET /metrics (config: metrics =) */
bool pp_metrics_listen(PpDaemon *d, GError **errp);
void pp_metrics_close(PpDaemon *d);
/* The exposition text (newly allocated). */
char *pp_metrics_text(PpDaemon *d);

/* control.c: the unix-socket control protocol */
bool pp_control_listen(PpDaemon *d, GError **errp);
/*
 * One request line: the reply as a JSON object (new reference).  On the
 * read-only query socket (@read_only) only queries are allowed.  Exposed
 * for tests and the fuzzer; the socket code calls it for every line.
 */
json_object *pp_control_request(PpDaemon *d, const char *line,
                                bool read_only);
/* Is @cmd one of the read-only queries (what the query socket serves)? */
bool pp_control_is_query(const char *cmd);
void pp_control_close(PpDaemon *d);

int pp_daemon_run(const char *config_path, bool daemonize);

#endif
