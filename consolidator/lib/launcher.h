/*
 * QEMU launcher: start, pin, stop and reap QEMU processes of our build.
 *
 * A PpVm is one QEMU process that this program started.  Its files live in
 * a private run directory (mode 0700): qmp.sock (QMP, mode 0600),
 * serial.sock (the guest's serial console, mode 0600), serial.log
 * (everything the guest printed) and qemu.log (QEMU's stdout/stderr).
 *
 * Ownership: pp_vm_start() returns a PpVm owned by the caller, freed with
 * pp_vm_free(), which kills a still-running process (SIGKILL) and reaps it,
 * so no QEMU outlives a forgotten handle.  Use pp_vm_stop() for an orderly
 * stop.  A detached QEMU (PpVmConfig.detach) is meant to outlive its
 * handle: pp_vm_forget() lets go of it without a signal, and a later
 * process takes it over with pp_vm_adopt().
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef PP_LAUNCHER_H
#define PP_LAUNCHER_H

#include <glib.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/types.h>

typedef struct PpVmConfig {
    const char *name;           /* used in -name and messages */
    const char *qemu;           /* path of qemu-system-x86_64 */
    const char *const *firmware_dirs; /* -L dirs, NULL-terminated; may be NULL */
    const char *accel;          /* "tcg" or "kvm" */
    const char *machine;        /* NULL: "pc" */
    guint mem_mib;
    guint vcpus;
    const char *kernel;
    const char *initrd;         /* may be NULL */
    const char *append;         /* kernel command line, may be NULL */
    const char *cpus;           /* host CPU list to pin to, e.g. "0-1,3"; NULL: no pinning */
    const char *run_dir;        /* created 0700 if missing */
    const char *netns;          /* run inside /run/netns/NAME; NULL: ours */
    bool incoming_defer;        /* start a migration destination */
    bool sandbox;               /* seccomp: -sandbox on, denying obsolete
                                 * calls, privilege changes, spawning and
                                 * resource control (as libvirt does) */
    bool die_with_parent;       /* SIGKILL QEMU if this process dies */
    bool detach;                /* QEMU is not our child: it outlives this
                                 * process (pidfile qemu.pid in run_dir,
                                 * for pp_vm_adopt) */
    const char *const *extra_args; /* appended verbatim, NULL-terminated */
    const char *net_tap;        /* a virtio-net NIC on this existing tap
                                 * device (in netns); NULL: no NIC */
    const char *net_mac;        /* its MAC (xx:xx:xx:xx:xx:xx; needed with
                                 * net_tap, the same on both sides of a
                                 * move) */
    const char *user;           /* run QEMU as this user (set before exec,
                                 * after entering the namespace; the run
                                 * directory becomes theirs); NULL: ours */
} PpVmConfig;

typedef struct PpVm PpVm;

/* Parse a CPU list ("0", "0-3", "0,2-3") into @set. */
bool pp_cpuset_parse(const char *list, cpu_set_t *set, GError **errp);

/*
 * Build QEMU's argv for @cfg (the launcher's exact command line; exposed
 * for tests and for printing).  Returns a NULL-terminated vector owned by
 * the caller (g_strfreev).
 */
char **pp_vm_build_argv(const PpVmConfig *cfg, GError **errp);

/*
 * Start QEMU and wait until its QMP socket accepts connections or
 * @timeout_ms passes.  On failure the process is reaped and the error
 * carries the last line QEMU printed.
 */
PpVm *pp_vm_start(const PpVmConfig *cfg, int timeout_ms, GError **errp);

/*
 * The same in two steps, for a caller that must not wait (a main loop):
 * pp_vm_spawn() forks and execs QEMU (an exec failure is reported here)
 * and returns at once; pp_vm_poll_ready() then says 1 once the QMP socket
 * accepts, 0 not yet, -1 with @errp when QEMU exited (its last words).
 */
PpVm *pp_vm_spawn(const PpVmConfig *cfg, GError **errp);

/* A regular file (not a symlink) that this process's user owns: what a
 * run directory shared with a QEMU user may hold that we can trust. */
bool pp_file_trusted(const char *path);

/*
 * Can QEMU running as @user do what a post-copy migration needs
 * (userfaultfd: /dev/userfaultfd, or the syscall when
 * vm.unprivileged_userfaultfd allows) and, with @kvm, open /dev/kvm?
 * Tried for real in a child that becomes @user.  False with a message
 * that says what to change.
 */
bool pp_user_can_run_qemu(const char *user, bool kvm, GError **errp);
int pp_vm_poll_ready(PpVm *vm, GError **errp);

/*
 * Stop: SIGTERM, wait up to @timeout_ms, then SIGKILL; always reaps.
 * Returns false with an error when QEMU had to be killed or had already
 * died abnormally; the PpVm stays valid (and stopped) either way.
 */
bool pp_vm_stop(PpVm *vm, int timeout_ms, GError **errp);

/*
 * Take over a detached QEMU that an earlier process started in @run_dir
 * (its pidfile names the process and its start time, so a reused pid is
 * not mistaken for it).  NULL with PP_ERROR_EXITED when it no longer runs.
 */
PpVm *pp_vm_adopt(const char *run_dir, const char *name, GError **errp);

/* Reap without blocking; true while the process runs. */
bool pp_vm_is_running(PpVm *vm);

/* Wait up to @timeout_ms for the process to exit by itself; reaps it. */
bool pp_vm_wait_exit(PpVm *vm, int timeout_ms);

pid_t pp_vm_pid(const PpVm *vm);
const char *pp_vm_run_dir(const PpVm *vm);
const char *pp_vm_name(const PpVm *vm);
const char *pp_vm_qmp_path(const PpVm *vm);
const char *pp_vm_serial_path(const PpVm *vm);
const char *pp_vm_serial_log(const PpVm *vm);
const char *pp_vm_qemu_log(const PpVm *vm);
/* Raw wait status once reaped, -1 before. */
int pp_vm_exit_status(const PpVm *vm);

/* Send one line to the guest's serial console (a newline is appended). */
bool pp_vm_serial_send(PpVm *vm, const char *line, GError **errp);

void pp_vm_free(PpVm *vm);
/* Free the handle only: a running QEMU keeps running. */
void pp_vm_forget(PpVm *vm);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PpVm, pp_vm_free)

#endif
