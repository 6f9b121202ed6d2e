/*
 * Consolidator configuration (INI, read with GKeyFile).
 *
 *   [consolidator]  daemon settings (see docs/consolidator.md)
 *   [policy]        name = threshold, plus the policy's own settings
 *   [host NAME]     local: an emulated host: cpus = 0-1, memory = MiB;
 *                   libvirt: uri, peer_uri, migration_address, cpus, memory
 *   [vm NAME]       local only: memory, vcpus, host (where it starts),
 *                   workload, fill
 *
 * Loading validates everything before anything starts: an error names the
 * file, the line and the key.  Relative paths are relative to the file.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef PP_CONFIG_H
#define PP_CONFIG_H

#include <glib.h>
#include <stdbool.h>

#include "policy.h"

typedef enum PpMigKind {
    PP_MIG_PRECOPY,
    PP_MIG_POSTCOPY,        /* switch to post-copy right after the start */
    PP_MIG_POSTCOPY_AFTER,  /* after after_s seconds of pre-copy */
    PP_MIG_POSTCOPY_INSTANT, /* our QEMU's x-postcopy-instant: the source
                              * switches by itself, no second command */
} PpMigKind;

typedef struct PpMigMode {
    PpMigKind kind;
    double after_s;
} PpMigMode;

/* "precopy", "postcopy", "postcopy-after=SECONDS" or "postcopy-instant". */
bool pp_mig_mode_parse(const char *s, PpMigMode *mode, GError **errp);
/* Newly allocated text form of @mode. */
char *pp_mig_mode_str(const PpMigMode *mode);

typedef struct PpHostConfig {
    char *name;
    char *cpus;             /* CPU list (local: required; libvirt: the
                             * host's share of its node, optional) */
    guint ncpus;            /* CPUs in the list; 0 without one */
    char *host_work_cpus;   /* local: where QEMU's threads other than its
                             * vCPUs run (migration, I/O); NULL: cpus */
    guint64 mem_mib;        /* 0: unlimited (local), the node's (libvirt) */
    char *uri;              /* libvirt: how the daemon reaches it */
    char *peer_uri;         /* libvirt: how other hosts' libvirtd reach it
                             * (peer-to-peer migration); default uri */
    char *migration_address; /* libvirt: where QEMU's migration data goes;
                              * NULL: libvirt's choice */
    char *power_off;        /* shell command suspending it; NULL: none
                             * (local: emulated) */
    char *power_on;         /* shell command waking it */
    double wake_delay;      /* s after power_on until it takes VMs */
    double min_awake;       /* s a woken host stays on before a plan's suspend */
    bool has_power;         /* watts given: the policies see its power */
    PpPowerModel power;
} PpHostConfig;

typedef struct PpVmSpec {
    char *name;
    guint64 mem_mib;
    guint vcpus;
    char *host;             /* initial host */
    char *workload;         /* guest command, e.g. "cpuload --schedule=20" */
    guint64 fill_mib;       /* fill at boot (pp.fill) */
    char *address;          /* guest_net: its interface's "A.B.C.D/P"
                             * (default 10.78.0.(10 + position)/24) */
    char *mac;              /* guest_net: its NIC's MAC (default 52:54:00
                             * and a hash of instance and name) */
} PpVmSpec;

typedef struct PpConfig {
    char *path;
    char *driver;           /* "local" or "libvirt" (see driver.h) */
    char **domains;         /* libvirt: name patterns of managed domains */
    char **no_relocate;     /* name patterns of VMs the policy never moves
                             * (reloadable); NULL: none */
    bool require_metadata;  /* libvirt: ... and only those with our
                             * metadata element */
    bool peer_to_peer;      /* libvirt: VIR_MIGRATE_PEER2PEER */
    char *metrics;          /* ADDRESS:PORT of /metrics, or NULL: off */
    char *instance;         /* names namespaces and run directories */
    char *state_dir;
    char *socket;           /* control: every command, for root, the
                             * daemon's user and control_group */
    char *query_socket;     /* read-only queries, for everyone; NULL: none */
    char *control_group;    /* group allowed on the control socket */
    char *database;
    double sample_interval;
    double decide_interval;
    double decide_after;    /* no decision before this long after start */
    double retention;
    guint max_moves;        /* concurrent migrations */
    PpMigMode mode;         /* for moves the policy plans */
    guint64 downtime_ms;    /* pre-copy downtime limit */
    guint64 max_bandwidth;  /* pre-copy MiB/s, 0 = unlimited */
    guint64 recover_timeout_s; /* retry a paused post-copy this long; 0:
                                * only on request */
    /* post-copy extensions of our QEMU, used when its schema has them */
    bool hot_first;         /* x-postcopy-hot-first, hot sets kept per VM */
    guint64 hot_track_ms;   /* x-hot-track-ms when no hot set is known */
    guint64 send_buffer;    /* x-postcopy-send-buffer, bytes (0: system) */
    guint64 fault_window;   /* x-postcopy-window, pages */
    guint64 pacing_pct;     /* pace post-copy at this % of link_rate */
    guint64 pacing_rate;    /* ... in bytes/s (0: link_rate none, or off) */
    bool autopilot;         /* run the policy; false: only manual moves */
    bool guest_net;         /* local: each VM gets a NIC on the guest LAN
                             * (pp-net guestnet), moved with it */
    char *link_rate;        /* tc tbf rate or "none" */
    double link_bytes;      /* link_rate in bytes/s; 0: none */
    char *qemu, *kernel, *initrd, *accel;
    bool sandbox;           /* local: QEMU under seccomp (-sandbox on) */
    char *qemu_user;        /* local: run QEMU as this user; NULL: root */
    char **firmware;
    char *policy_name;
    GKeyFile *kf;           /* for the policy's own settings */
    GPtrArray *hosts;       /* PpHostConfig * */
    GPtrArray *vms;         /* PpVmSpec * */
} PpConfig;

PpConfig *pp_config_load(const char *path, GError **errp);
/* Parse from memory; @path is used in messages and to resolve paths. */
PpConfig *pp_config_parse(const char *text, const char *path, GError **errp);
void pp_config_free(PpConfig *cfg);

/*
 * Reload (SIGHUP): may @old's running daemon take @new?  Only settings
 * that need no restart may differ: the policy (name and [policy]),
 * intervals, retention, mode, limits, autopilot, recovery and our QEMU's
 * post-copy tunables.  False with @errp naming the first other setting
 * that differs (hosts, VMs, driver, paths, sockets, link, QEMU...).
 */
bool pp_config_reloadable(const PpConfig *old, const PpConfig *new,
                          GError **errp);
/* Move @new's reloadable settings into @old (whose host and VM entries
 * the daemon keeps pointers to); @new keeps the rest, to be freed. */
void pp_config_take_reloadable(PpConfig *old, PpConfig *new);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PpConfig, pp_config_free)

const PpHostConfig *pp_config_host(const PpConfig *cfg, const char *name);
const PpVmSpec *pp_config_vm(const PpConfig *cfg, const char *name);
/* Does one of @patterns (shell globs; NULL-terminated, may be NULL; empty
 * ones match nothing) match @name?  For domains and no_relocate. */
bool pp_name_matches(char *const *patterns, const char *name);
/* Does no_relocate name @vm (a glob pattern matches)? */
bool pp_config_no_relocate(const PpConfig *cfg, const char *vm);

#endif
