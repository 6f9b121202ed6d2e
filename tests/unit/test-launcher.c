/*
 * Unit tests: QEMU launcher (CPU lists, command line, start/stop of a
 * stand-in QEMU, error paths).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launcher.h"
#include "pp-error.h"

#ifndef TEST_DATA
#define TEST_DATA "tests/data"
#endif

static void test_cpuset_parse(void **state)
{
    cpu_set_t s;
    g_autoptr(GError) err = NULL;

    assert_true(pp_cpuset_parse("0", &s, &err));
    assert_int_equal(CPU_COUNT(&s), 1);
    assert_true(CPU_ISSET(0, &s));
    assert_true(pp_cpuset_parse("0,2-4,7", &s, &err));
    assert_int_equal(CPU_COUNT(&s), 5);
    assert_true(CPU_ISSET(3, &s) && CPU_ISSET(7, &s) && !CPU_ISSET(5, &s));

    const char *bad[] = { "", "a", "1-", "-1", "3-1", "1,,2", "1 ", "99999" };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_clear_error(&err);
        assert_false(pp_cpuset_parse(bad[i], &s, &err));
        assert_true(g_error_matches(err, PP_ERROR, PP_ERROR_INVALID));
    }
    /* The message quotes what the user wrote. */
    assert_non_null(strstr(err->message, "'99999'"));
}

static bool argv_has(char **argv, const char *a, const char *b)
{
    for (char **p = argv; *p; p++) {
        if (strcmp(*p, a) == 0 && (!b || (p[1] && strcmp(p[1], b) == 0))) {
            return true;
        }
    }
    return false;
}

static void test_build_argv(void **state)
{
    const char *fw[] = { "/fw1", "/fw2", NULL };
    const char *extra[] = { "-S", NULL };
    PpVmConfig cfg = {
        .name = "vm0", .qemu = "/q", .firmware_dirs = fw, .accel = "tcg",
        .mem_mib = 512, .vcpus = 2, .kernel = "/k", .initrd = "/i",
        .append = "console=ttyS0", .run_dir = "/run/x",
        .incoming_defer = true, .extra_args = extra,
    };
    g_autoptr(GError) err = NULL;
    g_auto(GStrv) argv = pp_vm_build_argv(&cfg, &err);

    assert_non_null(argv);
    assert_string_equal(argv[0], "/q");
    assert_true(argv_has(argv, "-accel", "tcg"));
    assert_true(argv_has(argv, "-cpu", "qemu64"));
    assert_true(argv_has(argv, "-m", "512"));
    assert_true(argv_has(argv, "-smp", "2"));
    assert_true(argv_has(argv, "-L", "/fw1") && argv_has(argv, "-L", "/fw2"));
    assert_true(argv_has(argv, "-kernel", "/k"));
    assert_true(argv_has(argv, "-initrd", "/i"));
    assert_true(argv_has(argv, "-append", "console=ttyS0"));
    assert_true(argv_has(argv, "-qmp",
                         "unix:/run/x/qmp.sock,server=on,wait=off"));
    assert_true(argv_has(argv, "-incoming", "defer"));
    assert_string_equal(argv[g_strv_length(argv) - 1], "-S");

    cfg.incoming_defer = false;
    cfg.accel = "kvm";
    g_strfreev(argv);
    argv = pp_vm_build_argv(&cfg, &err);
    assert_false(argv_has(argv, "-incoming", NULL));
    assert_true(argv_has(argv, "-cpu", "host"));

    cfg.accel = "hax";
    g_strfreev(argv);
    argv = pp_vm_build_argv(&cfg, &err);
    assert_null(argv);
    assert_true(g_error_matches(err, PP_ERROR, PP_ERROR_INVALID));
    assert_non_null(strstr(err->message, "'hax'"));
    g_clear_error(&err);
    cfg.accel = "tcg";
    cfg.mem_mib = 0;
    assert_null(pp_vm_build_argv(&cfg, &err));
    g_clear_error(&err);

    /* No NIC unless asked for (-nodefaults); then virtio-net on the tap,
     * with no script and no option ROM. */
    cfg.mem_mib = 512;
    argv = pp_vm_build_argv(&cfg, &err);
    assert_false(argv_has(argv, "-netdev", NULL));
    assert_true(argv_has(argv, "-nodefaults", NULL));
    g_strfreev(argv);
    cfg.net_tap = "pv0123abcd";
    cfg.net_mac = "52:54:00:aa:bb:cc";
    argv = pp_vm_build_argv(&cfg, &err);
    assert_true(argv_has(argv, "-netdev", "tap,id=net0,ifname=pv0123abcd,"
                         "script=no,downscript=no"));
    assert_true(argv_has(argv, "-device", "virtio-net-pci,netdev=net0,"
                         "id=nic0,mac=52:54:00:aa:bb:cc,romfile="));
    const char *bad[][2] = {
        { "pv0123abcd", NULL }, { "pv0123abcd", "52:54:00:aa:bb" },
        { "a-tap-name-too-long", "52:54:00:aa:bb:cc" },
        { "tap,script=/x", "52:54:00:aa:bb:cc" },
        { "pv0", "52:54:00:aa:bb:cc,romfile=/x" },
    };
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_strfreev(argv);
        cfg.net_tap = bad[i][0];
        cfg.net_mac = bad[i][1];
        argv = pp_vm_build_argv(&cfg, &err);
        assert_null(argv);
        assert_true(g_error_matches(err, PP_ERROR, PP_ERROR_INVALID));
        g_clear_error(&err);
    }
}

static char *tmp_dir(void)
{
    GError *err = NULL;
    char *d = g_dir_make_tmp("pp-launcher-XXXXXX", &err);

    assert_non_null(d);
    return d;
}

static PpVmConfig fake_cfg(const char *run_dir)
{
    PpVmConfig cfg = {
        .name = "fake", .qemu = TEST_DATA "/fake-qemu", .accel = "tcg",
        .mem_mib = 64, .vcpus = 1, .kernel = "/nonexistent-kernel",
        .run_dir = run_dir, .cpus = "0", .die_with_parent = true,
    };
    return cfg;
}

static void test_start_stop(void **state)
{
    g_autofree char *dir = tmp_dir();
    g_autofree char *run = g_build_filename(dir, "vm", NULL);
    PpVmConfig cfg = fake_cfg(run);
    g_autoptr(GError) err = NULL;
    g_autoptr(PpVm) vm = pp_vm_start(&cfg, 10000, &err);
    struct stat st;

    if (!vm) {
        fail_msg("start failed: %s", err->message);
    }
    assert_true(pp_vm_is_running(vm));
    assert_true(pp_vm_pid(vm) > 0);
    /* Private run directory and owner-only QMP socket. */
    assert_int_equal(stat(run, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stat(pp_vm_qmp_path(vm), &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    /* Pinned to CPU 0 before exec. */
    g_autofree char *log = NULL;
    assert_true(g_file_get_contents(pp_vm_qemu_log(vm), &log, NULL, NULL));
    assert_non_null(strstr(log, "affinity: 0\n"));

    assert_true(pp_vm_stop(vm, 5000, &err));
    assert_false(pp_vm_is_running(vm));
    assert_int_equal(pp_vm_pid(vm), 0);
    assert_true(WIFEXITED(pp_vm_exit_status(vm)));
    /* Stopping twice is harmless. */
    assert_true(pp_vm_stop(vm, 100, &err));
}

static void test_exit_during_startup(void **state)
{
    g_autofree char *dir = tmp_dir();
    PpVmConfig cfg = fake_cfg(dir);
    g_autoptr(GError) err = NULL;

    g_setenv("FAKE_QEMU_EXIT", "3", TRUE);
    g_autoptr(PpVm) vm = pp_vm_start(&cfg, 10000, &err);
    g_unsetenv("FAKE_QEMU_EXIT");
    assert_null(vm);
    assert_true(g_error_matches(err, PP_ERROR, PP_ERROR_EXITED));
    /* The error carries QEMU's last words. */
    assert_non_null(strstr(err->message, "failing on purpose"));
}

static void test_bad_binary(void **state)
{
    g_autofree char *dir = tmp_dir();
    PpVmConfig cfg = fake_cfg(dir);
    g_autoptr(GError) err = NULL;

    cfg.qemu = "/nonexistent/qemu";
    g_autoptr(PpVm) vm = pp_vm_start(&cfg, 1000, &err);
    assert_null(vm);
    assert_true(g_error_matches(err, PP_ERROR, PP_ERROR_INVALID));
    assert_non_null(strstr(err->message, "'/nonexistent/qemu'"));

    g_clear_error(&err);
    cfg.qemu = TEST_DATA "/fake-qemu";
    cfg.cpus = "x";
    vm = pp_vm_start(&cfg, 1000, &err);
    assert_null(vm);
    assert_true(g_error_matches(err, PP_ERROR, PP_ERROR_INVALID));
}

static void test_free_kills(void **state)
{
    g_autofree char *dir = tmp_dir();
    PpVmConfig cfg = fake_cfg(dir);
    g_autoptr(GError) err = NULL;
    PpVm *vm = pp_vm_start(&cfg, 10000, &err);
    pid_t pid;

    assert_non_null(vm);
    pid = pp_vm_pid(vm);
    pp_vm_free(vm);
    /* Reaped: the pid no longer names our child. */
    assert_int_equal(kill(pid, 0), -1);
}

static void test_detach_adopt(void **state)
{
    g_autofree char *dir = tmp_dir();
    PpVmConfig cfg = fake_cfg(dir);
    g_autoptr(GError) err = NULL;
    g_autofree char *pidfile = g_build_filename(dir, "qemu.pid", NULL);
    PpVm *vm;
    pid_t pid;

    cfg.die_with_parent = false;
    cfg.detach = true;
    vm = pp_vm_start(&cfg, 10000, &err);
    if (!vm) {
        fail_msg("start failed: %s", err->message);
    }
    pid = pp_vm_pid(vm);
    /* Not our child: init (or a subreaper) is its parent. */
    assert_int_equal(waitpid(pid, NULL, WNOHANG), -1);
    assert_true(pp_vm_is_running(vm));
    /* Forgetting the handle leaves QEMU running... */
    pp_vm_forget(vm);
    assert_int_equal(kill(pid, 0), 0);
    /* ... for another process to take over. */
    vm = pp_vm_adopt(dir, "fake", &err);
    if (!vm) {
        fail_msg("adopt failed: %s", err->message);
    }
    assert_int_equal(pp_vm_pid(vm), pid);
    assert_true(pp_vm_is_running(vm));
    assert_true(pp_vm_stop(vm, 5000, &err));
    assert_false(pp_vm_is_running(vm));
    pp_vm_free(vm);
    /* Gone: adopting fails, and so does a pidfile whose start time names
     * another process (a reused pid). */
    assert_null(pp_vm_adopt(dir, "fake", &err));
    assert_true(g_error_matches(err, PP_ERROR, PP_ERROR_EXITED));
    g_clear_error(&err);
    g_autofree char *self = g_strdup_printf("%d 12345\n", (int)getpid());
    assert_true(g_file_set_contents(pidfile, self, -1, NULL));
    assert_null(pp_vm_adopt(dir, "fake", &err));
    assert_true(g_error_matches(err, PP_ERROR, PP_ERROR_EXITED));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpuset_parse),
        cmocka_unit_test(test_build_argv),
        cmocka_unit_test(test_start_stop),
        cmocka_unit_test(test_exit_during_startup),
        cmocka_unit_test(test_bad_binary),
        cmocka_unit_test(test_free_kills),
        cmocka_unit_test(test_detach_adopt),
    };
    return cmocka_run_group_tests_name("launcher", tests, NULL, NULL);
}
