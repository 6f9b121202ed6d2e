/*
 * Drivers: how the daemon reaches hosts and VMs.
 *
 * The daemon, the migration jobs' state machine and the policy know only
 * this interface.  A driver owns the mechanics: how a host is reached
 * (CPU sets of this machine, a libvirt URI), how VMs are found or started,
 * how they are sampled and how a migration is carried out.  The daemon
 * owns the model: hosts, VMs, jobs and their states, the store and the
 * decisions.
 *
 *   local    every host is a CPU set of this machine with its own network
 *            namespace; the VMs are QEMU processes the daemon starts from
 *            [vm NAME] sections (the embedded default: no libvirt needed)
 *   libvirt  every host is a libvirt connection (any URI); the VMs are the
 *            running domains found there (libvirt.c)
 *
 * A driver reports back by calling the daemon:
 *   pp_daemon_add_vm()        a VM it manages (found or started)
 *   pp_daemon_vm_lost()       a VM whose process disappeared
 *   pp_daemon_sample_host(), pp_daemon_sample_vm()   samples
 *   job_migrating(), job_switched(), job_source_done(), job_completed(),
 *   job_failed(), job_aborted(), job_paused(), job_recovered()
 *                             what a migration it carries out did
 *   pp_daemon_event()         anything worth a line in the log and store
 *
 * Every operation runs on the daemon's GLib main loop and must not block
 * it for longer than a local system call: work that waits (a QMP reply, a
 * libvirt RPC) completes later and reports through the calls above.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef PP_DRIVER_H
#define PP_DRIVER_H

#include <glib.h>
#include <json-c/json.h>
#include <stdbool.h>

typedef struct PpDaemon PpDaemon;
typedef struct Host Host;
typedef struct Vm Vm;
typedef struct Job Job;
typedef struct PpDriverOps PpDriverOps;

/* Every driver's state starts with this. */
typedef struct PpDriver {
    const PpDriverOps *ops;
    PpDaemon *d;
} PpDriver;

struct PpDriverOps {
    const char *name;
    const char *description;
    /* It starts its VMs itself, so it may stop them (close's stop_vms). */
    bool owns_vms;
    /*
     * Bring the hosts up (d->hosts holds one Host per [host NAME] section,
     * with name, mem_mib and ncpus from the configuration) and find or
     * start the VMs, each announced with pp_daemon_add_vm().  NULL with an
     * error when the cluster cannot be managed.
     */
    PpDriver *(*open)(PpDaemon *d, GError **errp);
    /* Sample every host and VM now (t: wall clock); may report later. */
    void (*sample)(PpDriver *drv, double t);
    /*
     * Start moving job->vm from job->from to job->to in job->mode.  On
     * success the driver reports job_migrating() once the migration
     * runs, and every later step; false with an error when nothing was
     * started (the guest stays where it is).
     */
    bool (*migrate_start)(PpDriver *drv, Job *job, GError **errp);
    /* Switch a running pre-copy to post-copy (once); a refusal is only
     * a warning event: pre-copy may have completed meanwhile. */
    void (*migrate_switch)(PpDriver *drv, Job *job);
    /*
     * Stop a move that did not complete and report job_aborted(): with
     * true once the guest runs on the source again, false when it cannot
     * (it switched to the destination).  The source is resumed only when
     * it is known that the destination does not run the guest.
     */
    void (*migrate_abort)(PpDriver *drv, Job *job);
    /*
     * After the switch: pause the post-copy (close its channel; both QEMUs
     * keep the guest's state) and report job_paused() once it is paused.
     */
    void (*migrate_pause)(PpDriver *drv, Job *job);
    /*
     * A PAUSED job: resume the post-copy on a new channel, reporting
     * job_recovered() once it runs again, or job_paused() with the reason
     * when this attempt failed and both sides still wait.  A QEMU found
     * dead is job_failed().
     */
    void (*migrate_recover)(PpDriver *drv, Job *job);
    /* Free the driver's part of a job (job->priv); the job is over. */
    void (*job_release)(PpDriver *drv, Job *job);
    /* Add driver-specific members to a VM's JSON (e.g. "pid"). */
    void (*vm_describe)(PpDriver *drv, Vm *vm, json_object *o);
    /* Forget a VM (vm->priv), leaving its guest as it is. */
    void (*vm_release)(PpDriver *drv, Vm *vm);
    /*
     * Close the driver.  With @stop_vms the VMs it started are stopped
     * and what it set up on the hosts is removed; without, every VM keeps
     * running for the next daemon to adopt.
     */
    void (*close)(PpDriver *drv, bool stop_vms);
};

/* The registered drivers, NULL-terminated. */
extern const PpDriverOps *const pp_drivers[];

/* Look a driver up by name; NULL with an error listing the known ones. */
const PpDriverOps *pp_driver_find(const char *name, GError **errp);

#endif
