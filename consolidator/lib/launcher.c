/*
 * QEMU launcher (see launcher.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "launcher.h"
#include "pp-error.h"
#include "unixsock.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct PpVm {
    char *name;
    pid_t pid;          /* 0 once reaped */
    int status;         /* wait status once reaped, -1 before */
    bool detached;      /* not our child: watched through /proc */
    guint64 start_time; /* detached: /proc/PID/stat starttime */
    char *run_dir;
    char *qmp_path;
    char *serial_path;
    char *serial_log;
    char *qemu_log;
};

bool pp_cpuset_parse(const char *list, cpu_set_t *set, GError **errp)
{
    g_auto(GStrv) parts = NULL;

    CPU_ZERO(set);
    if (!list || !*list) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID, "empty CPU list");
        return false;
    }
    parts = g_strsplit(list, ",", -1);
    for (char **p = parts; *p; p++) {
        char *end;
        guint64 lo, hi;

        errno = 0;
        lo = g_ascii_strtoull(*p, &end, 10);
        if (end == *p || errno) {
            goto bad;
        }
        hi = lo;
        if (*end == '-') {
            char *s = end + 1;
            hi = g_ascii_strtoull(s, &end, 10);
            if (end == s || errno) {
                goto bad;
            }
        }
        if (*end || hi < lo || hi >= CPU_SETSIZE) {
            goto bad;
        }
        for (guint64 c = lo; c <= hi; c++) {
            CPU_SET(c, set);
        }
    }
    return true;

bad:
    g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                "invalid CPU list '%s' (expected e.g. '0', '0-3' or '0,2-3')",
                list);
    return false;
}

char **pp_vm_build_argv(const PpVmConfig *cfg, GError **errp)
{
    g_autoptr(GPtrArray) a = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *qmp = NULL, *serial = NULL, *log = NULL;

    if (!cfg->qemu || !cfg->kernel || !cfg->run_dir || !cfg->name) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "VM configuration needs qemu, kernel, run_dir and name");
        return NULL;
    }
    if (cfg->mem_mib == 0 || cfg->vcpus == 0) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "VM '%s' needs memory and vCPUs", cfg->name);
        return NULL;
    }
    if (cfg->accel && strcmp(cfg->accel, "tcg") != 0 &&
        strcmp(cfg->accel, "kvm") != 0) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "unknown accelerator '%s' (expected tcg or kvm)",
                    cfg->accel);
        return NULL;
    }
    if (cfg->net_tap &&
        (!g_regex_match_simple("^[A-Za-z0-9_.-]{1,15}$", cfg->net_tap, 0,
                               0) ||
         !cfg->net_mac ||
         !g_regex_match_simple("^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$",
                               cfg->net_mac, 0, 0))) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "NIC on tap '%s' with MAC '%s': a tap name is 1 to 15 "
                    "letters, digits, '.', '_' or '-', a MAC "
                    "xx:xx:xx:xx:xx:xx", cfg->net_tap,
                    cfg->net_mac ? cfg->net_mac : "(none)");
        return NULL;
    }
    qmp = g_build_filename(cfg->run_dir, "qmp.sock", NULL);
    serial = g_build_filename(cfg->run_dir, "serial.sock", NULL);
    log = g_build_filename(cfg->run_dir, "serial.log", NULL);

#define ADD(s) g_ptr_array_add(a, g_strdup(s))
#define ADDF(...) g_ptr_array_add(a, g_strdup_printf(__VA_ARGS__))
    ADD(cfg->qemu);
    ADD("-name");
    ADDF("%s,debug-threads=on", cfg->name);
    ADD("-nodefaults");
    ADD("-no-user-config");
    ADD("-display");
    ADD("none");
    ADD("-machine");
    ADD(cfg->machine ? cfg->machine : "pc");
    ADD("-accel");
    ADD(cfg->accel ? cfg->accel : "tcg");
    ADD("-cpu");
    ADD(cfg->accel && strcmp(cfg->accel, "kvm") == 0 ? "host" : "qemu64");
    ADD("-m");
    ADDF("%u", cfg->mem_mib);
    ADD("-smp");
    ADDF("%u", cfg->vcpus);
    for (const char *const *d = cfg->firmware_dirs; d && *d; d++) {
        ADD("-L");
        ADD(*d);
    }
    ADD("-kernel");
    ADD(cfg->kernel);
    if (cfg->initrd) {
        ADD("-initrd");
        ADD(cfg->initrd);
    }
    if (cfg->append) {
        ADD("-append");
        ADD(cfg->append);
    }
    ADD("-no-reboot");
    ADD("-qmp");
    ADDF("unix:%s,server=on,wait=off", qmp);
    ADD("-chardev");
    ADDF("socket,id=ser0,path=%s,server=on,wait=off,logfile=%s", serial, log);
    ADD("-serial");
    ADD("chardev:ser0");
    if (cfg->net_tap) {
        /* The tap exists (made by pp-net): QEMU only opens it, so no
         * script runs (the sandbox denies spawning) and no privilege is
         * needed beyond the tap's owner.  No option ROM: the guest boots
         * from -kernel, and both sides of a move must agree on the ROM. */
        ADD("-netdev");
        ADDF("tap,id=net0,ifname=%s,script=no,downscript=no", cfg->net_tap);
        ADD("-device");
        ADDF("virtio-net-pci,netdev=net0,id=nic0,mac=%s,romfile=",
             cfg->net_mac);
    }
    if (cfg->incoming_defer) {
        ADD("-incoming");
        ADD("defer");
    }
    if (cfg->sandbox) {
        ADD("-sandbox");
        ADD("on,obsolete=deny,elevateprivileges=deny,spawn=deny,"
            "resourcecontrol=deny");
    }
    for (const char *const *e = cfg->extra_args; e && *e; e++) {
        ADD(*e);
    }
#undef ADD
#undef ADDF
    g_ptr_array_add(a, NULL);
    return (char **)g_ptr_array_free(g_steal_pointer(&a), FALSE);
}

/* Last non-empty line of a file, for error messages; never NULL. */
static char *last_line(const char *path)
{
    g_autofree char *data = NULL;
    g_auto(GStrv) lines = NULL;

    if (!g_file_get_contents(path, &data, NULL, NULL)) {
        return g_strdup("(no output)");
    }
    lines = g_strsplit(data, "\n", -1);
    for (int i = (int)g_strv_length(lines) - 1; i >= 0; i--) {
        g_strstrip(lines[i]);
        if (*lines[i]) {
            return g_strdup(lines[i]);
        }
    }
    return g_strdup("(no output)");
}

static bool socket_accepts(const char *path)
{
    int fd = pp_unix_connect(path, "socket", NULL);

    if (fd < 0) {
        return false;
    }
    close(fd);
    return true;
}

/* Child side of fork(): never returns. */
/* A user to become, resolved before fork (getpwnam is not safe in a
 * forked child of a threaded process). */
typedef struct Creds {
    bool set;
    uid_t uid;
    gid_t gid;
    gid_t groups[64];
    int ngroups;
} Creds;

static bool creds_lookup(const char *user, Creds *c, GError **errp)
{
    struct passwd *pw;

    memset(c, 0, sizeof(*c));
    if (!user) {
        return true;
    }
    pw = getpwnam(user);
    if (!pw) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "no user '%s' on this system", user);
        return false;
    }
    c->set = true;
    c->uid = pw->pw_uid;
    c->gid = pw->pw_gid;
    c->ngroups = G_N_ELEMENTS(c->groups);
    if (getgrouplist(user, pw->pw_gid, c->groups, &c->ngroups) < 0) {
        c->groups[0] = pw->pw_gid;
        c->ngroups = 1;
    }
    return true;
}

/* In a child: become @c's user for good. */
static int creds_apply(const Creds *c)
{
    if (!c->set) {
        return 0;
    }
    if (setgroups((size_t)c->ngroups, c->groups) < 0 || setgid(c->gid) < 0 ||
        setuid(c->uid) < 0) {
        return -1;
    }
    return 0;
}

static void G_GNUC_NORETURN child_exec(const PpVmConfig *cfg, char **argv,
                                       const cpu_set_t *cpus, int logfd,
                                       int errpipe, pid_t parent,
                                       const Creds *creds)
{
    int err;
    int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);

    if (cfg->die_with_parent) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(127);
        }
    }
    /* Own process group (own session when detached): a terminal's ^C goes
     * to the manager, which then decides what happens to its VMs. */
    if (cfg->detach) {
        setsid();
    } else {
        setpgid(0, 0);
    }
    if (cfg->netns) {
        char path[256];
        snprintf(path, sizeof(path), "/run/netns/%s", cfg->netns);
        int nsfd = open(path, O_RDONLY | O_CLOEXEC);
        if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) < 0) {
            goto fail;
        }
        close(nsfd);
    }
    if (cpus && sched_setaffinity(0, sizeof(*cpus), cpus) < 0) {
        goto fail;
    }
    /* after the namespace and the CPUs, which need root */
    if (creds_apply(creds) < 0) {
        goto fail;
    }
    umask(0177); /* sockets and logs: owner only */
    if (nullfd < 0 || dup2(nullfd, STDIN_FILENO) < 0 ||
        dup2(logfd, STDOUT_FILENO) < 0 || dup2(logfd, STDERR_FILENO) < 0) {
        goto fail;
    }
    execv(argv[0], argv);
fail:
    err = errno;
    if (write(errpipe, &err, sizeof(err)) < 0) {
        /* nothing more we can do */
    }
    _exit(127);
}

static void vm_reap(PpVm *vm, int status)
{
    vm->status = status;
    vm->pid = 0;
}

/*
 * Start time of process @pid (clock ticks since boot, /proc/PID/stat
 * field 22): with the pid it names one process for good, where a pid
 * alone may be reused.  0 when the process does not exist or is a zombie.
 */
static guint64 proc_start_time(pid_t pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/stat", (int)pid);
    g_autofree char *text = NULL;
    g_auto(GStrv) f = NULL;
    char *p;

    if (!g_file_get_contents(path, &text, NULL, NULL) ||
        !(p = strrchr(text, ')'))) {
        return 0;
    }
    /* After "pid (comm)": state is field 3, starttime field 22. */
    f = g_strsplit(p + 2, " ", 22);
    if (g_strv_length(f) < 21 || f[0][0] == 'Z' || f[0][0] == 'X') {
        return 0;
    }
    return g_ascii_strtoull(f[19], NULL, 10);
}

static char *pidfile_path(const char *run_dir)
{
    return g_build_filename(run_dir, "qemu.pid", NULL);
}

static bool write_pidfile(PpVm *vm, GError **errp)
{
    g_autofree char *path = pidfile_path(vm->run_dir);
    g_autofree char *text = NULL;
    g_autoptr(GError) err = NULL;

    vm->start_time = proc_start_time(vm->pid);
    text = g_strdup_printf("%d %" G_GUINT64_FORMAT "\n", (int)vm->pid,
                           vm->start_time);
    if (!vm->start_time ||
        !g_file_set_contents_full(path, text, -1,
                                  G_FILE_SET_CONTENTS_CONSISTENT, 0600,
                                  &err)) {
        g_set_error(errp, PP_ERROR, PP_ERROR_IO,
                    "cannot record the pid of VM '%s' in '%s': %s", vm->name,
                    path, err ? err->message : "QEMU exited at once");
        return false;
    }
    return true;
}

static PpVm *vm_new(const char *name, const char *run_dir)
{
    PpVm *vm = g_new0(PpVm, 1);

    vm->name = g_strdup(name);
    vm->status = -1;
    vm->run_dir = g_strdup(run_dir);
    vm->qmp_path = g_build_filename(run_dir, "qmp.sock", NULL);
    vm->serial_path = g_build_filename(run_dir, "serial.sock", NULL);
    vm->serial_log = g_build_filename(run_dir, "serial.log", NULL);
    vm->qemu_log = g_build_filename(run_dir, "qemu.log", NULL);
    return vm;
}

bool pp_file_trusted(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
           st.st_uid == geteuid();
}

PpVm *pp_vm_adopt(const char *run_dir, const char *name, GError **errp)
{
    g_autofree char *path = pidfile_path(run_dir);
    g_autofree char *text = NULL;
    g_autoptr(PpVm) vm = vm_new(name, run_dir);
    guint64 pid, start;
    char *end;

    if (!pp_file_trusted(path)) {
        /* absent, or not written by us (a QEMU running as another user
         * shares the directory): nothing to adopt from it */
        g_set_error(errp, PP_ERROR, PP_ERROR_EXITED,
                    "no QEMU recorded in '%s'", run_dir);
        return NULL;
    }
    if (!g_file_get_contents(path, &text, NULL, NULL)) {
        g_set_error(errp, PP_ERROR, PP_ERROR_EXITED,
                    "no QEMU recorded in '%s'", run_dir);
        return NULL;
    }
    pid = g_ascii_strtoull(text, &end, 10);
    start = g_ascii_strtoull(end, NULL, 10);
    if (!pid || pid > G_MAXINT32 || !start ||
        proc_start_time((pid_t)pid) != start) {
        g_set_error(errp, PP_ERROR, PP_ERROR_EXITED,
                    "the QEMU recorded in '%s' is gone", path);
        return NULL;
    }
    vm->pid = (pid_t)pid;
    vm->start_time = start;
    vm->detached = true;
    return g_steal_pointer(&vm);
}

PpVm *pp_vm_spawn(const PpVmConfig *cfg, GError **errp)
{
    g_auto(GStrv) argv = NULL;
    g_autoptr(PpVm) vm = NULL;
    cpu_set_t cpus;
    int pipefd[2], pidpipe[2] = { -1, -1 }, logfd, err = 0;
    ssize_t n;
    pid_t pid;
    Creds creds;

    argv = pp_vm_build_argv(cfg, errp);
    if (!argv) {
        return NULL;
    }
    if (cfg->cpus && !pp_cpuset_parse(cfg->cpus, &cpus, errp)) {
        return NULL;
    }
    if (!g_file_test(cfg->qemu, G_FILE_TEST_IS_EXECUTABLE)) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "QEMU binary '%s' is not executable", cfg->qemu);
        return NULL;
    }
    if (cfg->netns) {
        g_autofree char *ns = g_strdup_printf("/run/netns/%s", cfg->netns);
        if (!g_file_test(ns, G_FILE_TEST_EXISTS)) {
            g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                        "network namespace '%s' does not exist", cfg->netns);
            return NULL;
        }
    }
    if (g_mkdir_with_parents(cfg->run_dir, 0700) < 0) {
        g_set_error(errp, PP_ERROR, PP_ERROR_IO,
                    "cannot create run directory '%s': %s", cfg->run_dir,
                    g_strerror(errno));
        return NULL;
    }
    chmod(cfg->run_dir, 0700);

    if (!creds_lookup(cfg->user, &creds, errp)) {
        return NULL;
    }
    /* QEMU creates its sockets and logs there once it is the user: the
     * directory stays root's, with the user's group and the sticky bit,
     * so it cannot replace or redirect what root writes there (pidfile,
     * host, qemu.log); the VM's directory above only lets it through. */
    g_autofree char *vm_dir = g_path_get_dirname(cfg->run_dir);
    if (creds.set && (chown(cfg->run_dir, 0, creds.gid) < 0 ||
                      chmod(cfg->run_dir, 01770) < 0 ||
                      chmod(vm_dir, 0711) < 0)) {
        g_set_error(errp, PP_ERROR, PP_ERROR_IO, "cannot give '%s' to user "
                    "'%s': %s", cfg->run_dir, cfg->user, g_strerror(errno));
        return NULL;
    }
    vm = vm_new(cfg->name, cfg->run_dir);
    /* Stale sockets of an earlier run would make the readiness probe lie. */
    unlink(vm->qmp_path);
    unlink(vm->serial_path);

    logfd = open(vm->qemu_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
                 O_NOFOLLOW, 0600);
    if (logfd < 0) {
        g_set_error(errp, PP_ERROR, PP_ERROR_IO, "cannot create '%s': %s",
                    vm->qemu_log, g_strerror(errno));
        return NULL;
    }
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        g_set_error(errp, PP_ERROR, PP_ERROR_IO, "pipe: %s",
                    g_strerror(errno));
        close(logfd);
        return NULL;
    }
    pid_t parent = getpid();
    if (cfg->detach && pipe2(pidpipe, O_CLOEXEC) < 0) {
        g_set_error(errp, PP_ERROR, PP_ERROR_IO, "pipe: %s",
                    g_strerror(errno));
        close(pipefd[0]);
        close(pipefd[1]);
        close(logfd);
        return NULL;
    }
    pid = fork();
    if (pid < 0) {
        g_set_error(errp, PP_ERROR, PP_ERROR_IO, "fork: %s",
                    g_strerror(errno));
        close(pipefd[0]);
        close(pipefd[1]);
        close(logfd);
        if (cfg->detach) {
            close(pidpipe[0]);
            close(pidpipe[1]);
        }
        return NULL;
    }
    if (pid == 0) {
        close(pipefd[0]);
        if (cfg->detach) {
            /* Fork again and leave: QEMU's parent becomes init (or the
             * nearest subreaper), so it outlives this process. */
            pid_t q = fork();
            if (q == 0) {
                close(pidpipe[0]);
                close(pidpipe[1]);
                child_exec(cfg, argv, cfg->cpus ? &cpus : NULL, logfd,
                           pipefd[1], parent, &creds);
            }
            if (write(pidpipe[1], &q, sizeof(q)) < 0) {
                /* the parent sees a short read */
            }
            _exit(q < 0 ? 127 : 0);
        }
        child_exec(cfg, argv, cfg->cpus ? &cpus : NULL, logfd, pipefd[1],
                   parent, &creds);
    }
    close(pipefd[1]);
    close(logfd);
    if (cfg->detach) {
        pid_t q = -1;
        int status;

        close(pidpipe[1]);
        do {
            n = read(pidpipe[0], &q, sizeof(q));
        } while (n < 0 && errno == EINTR);
        close(pidpipe[0]);
        waitpid(pid, &status, 0);
        if (n != sizeof(q) || q <= 0) {
            g_set_error(errp, PP_ERROR, PP_ERROR_IO,
                        "cannot start '%s' for VM '%s': fork failed",
                        cfg->qemu, cfg->name);
            close(pipefd[0]);
            return NULL;
        }
        pid = q;
        vm->detached = true;
    }
    vm->pid = pid;
    do {
        n = read(pipefd[0], &err, sizeof(err));
    } while (n < 0 && errno == EINTR);
    close(pipefd[0]);
    if (n == sizeof(err)) {
        if (!vm->detached) {
            int status;
            waitpid(pid, &status, 0);
            vm_reap(vm, status);
        } else {
            vm_reap(vm, -1);
        }
        g_set_error(errp, PP_ERROR, PP_ERROR_IO,
                    "cannot start '%s' for VM '%s': %s", cfg->qemu,
                    cfg->name, g_strerror(err));
        return NULL;
    }
    if (vm->detached && !write_pidfile(vm, errp)) {
        return NULL; /* pp_vm_free kills it */
    }
    return g_steal_pointer(&vm);
}

int pp_vm_poll_ready(PpVm *vm, GError **errp)
{
    if (!pp_vm_is_running(vm)) {
        g_autofree char *why = last_line(vm->qemu_log);
        g_set_error(errp, PP_ERROR, PP_ERROR_EXITED,
                    "QEMU for VM '%s' exited during start-up: %s", vm->name,
                    why);
        return -1;
    }
    return socket_accepts(vm->qmp_path) ? 1 : 0;
}

PpVm *pp_vm_start(const PpVmConfig *cfg, int timeout_ms, GError **errp)
{
    g_autoptr(PpVm) vm = pp_vm_spawn(cfg, errp);
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    int r;

    if (!vm) {
        return NULL;
    }
    while ((r = pp_vm_poll_ready(vm, errp)) == 0) {
        if (g_get_monotonic_time() > deadline) {
            g_set_error(errp, PP_ERROR, PP_ERROR_TIMEOUT,
                        "QEMU for VM '%s' did not open its QMP socket "
                        "within %d ms", cfg->name, timeout_ms);
            return NULL; /* pp_vm_free kills it */
        }
        g_usleep(10 * 1000);
    }
    if (r < 0) {
        return NULL;
    }
    return g_steal_pointer(&vm);
}

bool pp_vm_is_running(PpVm *vm)
{
    int status;
    pid_t r;

    if (!vm->pid) {
        return false;
    }
    if (vm->detached) {
        if (proc_start_time(vm->pid) != vm->start_time) {
            vm_reap(vm, -1);
            return false;
        }
        return true;
    }
    do {
        r = waitpid(vm->pid, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == vm->pid || (r < 0 && errno == ECHILD)) {
        vm_reap(vm, r == vm->pid ? status : -1);
        return false;
    }
    return true;
}

bool pp_vm_wait_exit(PpVm *vm, int timeout_ms)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

    while (pp_vm_is_running(vm)) {
        if (g_get_monotonic_time() > deadline) {
            return false;
        }
        g_usleep(5 * 1000);
    }
    return true;
}

bool pp_vm_stop(PpVm *vm, int timeout_ms, GError **errp)
{
    if (!pp_vm_is_running(vm)) {
        if (vm->status != -1 && WIFSIGNALED(vm->status)) {
            g_set_error(errp, PP_ERROR, PP_ERROR_EXITED,
                        "QEMU for VM '%s' had died from signal %d",
                        vm->name, WTERMSIG(vm->status));
            return false;
        }
        return true;
    }
    kill(vm->pid, SIGTERM);
    if (pp_vm_wait_exit(vm, timeout_ms)) {
        return true;
    }
    kill(vm->pid, SIGKILL);
    pp_vm_wait_exit(vm, 5000);
    g_set_error(errp, PP_ERROR, PP_ERROR_TIMEOUT,
                "QEMU for VM '%s' ignored SIGTERM for %d ms and was killed",
                vm->name, timeout_ms);
    return false;
}

bool pp_vm_serial_send(PpVm *vm, const char *line, GError **errp)
{
    g_autofree char *msg = g_strdup_printf("%s\n", line);
    g_autofree char *what = g_strdup_printf("the serial console of VM '%s'",
                                            vm->name);
    int fd = pp_unix_connect(vm->serial_path, what, errp);

    if (fd < 0) {
        return false;
    }
    if (!pp_send_all(fd, msg, strlen(msg))) {
        g_set_error(errp, PP_ERROR, PP_ERROR_IO, "cannot write to %s: %s",
                    what, g_strerror(errno));
        close(fd);
        return false;
    }
    /* Give QEMU a moment to take the bytes before the hang-up. */
    g_usleep(50 * 1000);
    close(fd);
    return true;
}

pid_t pp_vm_pid(const PpVm *vm) { return vm->pid; }
const char *pp_vm_run_dir(const PpVm *vm) { return vm->run_dir; }
const char *pp_vm_name(const PpVm *vm) { return vm->name; }
const char *pp_vm_qmp_path(const PpVm *vm) { return vm->qmp_path; }
const char *pp_vm_serial_path(const PpVm *vm) { return vm->serial_path; }
const char *pp_vm_serial_log(const PpVm *vm) { return vm->serial_log; }
const char *pp_vm_qemu_log(const PpVm *vm) { return vm->qemu_log; }
int pp_vm_exit_status(const PpVm *vm) { return vm->status; }

void pp_vm_free(PpVm *vm)
{
    if (vm && vm->pid && pp_vm_is_running(vm)) {
        kill(vm->pid, SIGKILL);
        pp_vm_wait_exit(vm, 5000);
    }
    pp_vm_forget(vm);
}

void pp_vm_forget(PpVm *vm)
{
    if (!vm) {
        return;
    }
    g_free(vm->name);
    g_free(vm->run_dir);
    g_free(vm->qmp_path);
    g_free(vm->serial_path);
    g_free(vm->serial_log);
    g_free(vm->qemu_log);
    g_free(vm);
}

bool pp_user_can_run_qemu(const char *user, bool kvm, GError **errp)
{
    Creds c;
    pid_t pid;
    int status = 0;

    if (!creds_lookup(user, &c, errp)) {
        return false;
    }
    pid = fork();
    if (pid < 0) {
        g_set_error(errp, PP_ERROR, PP_ERROR_IO, "fork: %s",
                    g_strerror(errno));
        return false;
    }
    if (pid == 0) {
        int fd;

        if (creds_apply(&c) < 0) {
            _exit(1);
        }
        fd = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
        }
        if (fd < 0) {
            _exit(2);
        }
        close(fd);
        if (kvm && open("/dev/kvm", O_RDWR | O_CLOEXEC) < 0) {
            _exit(3);
        }
        _exit(0);
    }
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            status = 0x100; /* as if it exited with 1 */
            break;
        }
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        return true;
    }
    switch (WIFEXITED(status) ? WEXITSTATUS(status) : 1) {
    case 2:
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "user '%s' cannot use userfaultfd, which post-copy needs: "
                    "/dev/userfaultfd is not open to it and "
                    "vm.unprivileged_userfaultfd is 0 (e.g. setfacl -m "
                    "u:%s:rw /dev/userfaultfd, as libvirt does per QEMU)",
                    user, user);
        break;
    case 3:
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "user '%s' cannot open /dev/kvm (add it to group kvm)",
                    user);
        break;
    default:
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "cannot become user '%s'", user);
    }
    return false;
}
