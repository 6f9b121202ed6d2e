/*
 * Unit tests: consolidator configuration.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "config.h"
#include "pp-error.h"

static const char *good =
    "# two hosts, two VMs\n"
    "[consolidator]\n"
    "name = t1\n"
    "state_dir = state\n"
    "mode = postcopy-after=2.5\n"
    "link_rate = 100mbit\n"
    "accel = tcg\n"
    "\n"
    "[policy]\n"
    "name = threshold\n"
    "overload_cpu = 85\n"
    "\n"
    "[host pm0]\n"
    "cpus = 0\n"
    "memory = 4096\n"
    "\n"
    "[host pm1]\n"
    "cpus = 1-2\n"
    "\n"
    "[vm vm0]\n"
    "memory = 2048\n"
    "host = pm0\n"
    "workload = cpuload --schedule=20 --dirty-mib=32\n"
    "fill = 1536\n";

static void test_good(void **state)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(PpConfig) c = pp_config_parse(good, "/etc/pp/test.ini", &err);

    if (!c) {
        fail_msg("%s", err->message);
    }
    assert_string_equal(c->instance, "t1");
    assert_string_equal(c->state_dir, "/etc/pp/state");
    assert_string_equal(c->database, "/etc/pp/state/postpack.db");
    assert_string_equal(c->socket, "/etc/pp/state/control.sock");
    assert_int_equal(c->mode.kind, PP_MIG_POSTCOPY_AFTER);
    assert_true(c->mode.after_s == 2.5);
    assert_string_equal(c->link_rate, "100mbit");
    assert_true(c->autopilot);
    assert_int_equal(c->max_moves, 1);
    /* post-copy extension defaults */
    assert_true(c->hot_first);
    assert_int_equal(c->hot_track_ms, 300);
    assert_int_equal(c->send_buffer, 98304);
    assert_int_equal(c->fault_window, 64);
    /* 96% of the 100mbit link, in bytes/s */
    assert_int_equal(c->pacing_pct, 96);
    assert_int_equal(c->pacing_rate, 12000000);
    assert_int_equal(c->hosts->len, 2);
    const PpHostConfig *h = pp_config_host(c, "pm1");
    assert_non_null(h);
    assert_int_equal(h->ncpus, 2);
    assert_int_equal(h->mem_mib, 0);
    const PpVmSpec *v = pp_config_vm(c, "vm0");
    assert_non_null(v);
    assert_int_equal(v->mem_mib, 2048);
    assert_int_equal(v->vcpus, 1);
    assert_int_equal(v->fill_mib, 1536);
    assert_string_equal(v->workload, "cpuload --schedule=20 --dirty-mib=32");
    assert_null(pp_config_vm(c, "nope"));
}

/* Replace @from in the good config with @to and expect an error with
 * @needle. */
static void expect_error(const char *from, const char *to, const char *needle)
{
    g_autoptr(GString) text = g_string_new(good);
    g_autoptr(GError) err = NULL;

    assert_true(g_string_replace(text, from, to, 1) == 1);
    g_autoptr(PpConfig) c = pp_config_parse(text->str, "test.ini", &err);
    assert_null(c);
    assert_true(g_error_matches(err, PP_ERROR, PP_ERROR_INVALID));
    if (!strstr(err->message, needle)) {
        fail_msg("error '%s' lacks '%s'", err->message, needle);
    }
}

static void test_errors_name_file_line_key(void **state)
{
    expect_error("memory = 4096", "memroy = 4096",
                 "test.ini:15: [host pm0] memroy: unknown key");
    expect_error("cpus = 1-2", "cpus = 2-1",
                 "test.ini:18: [host pm1] cpus: invalid CPU list '2-1'");
    expect_error("host = pm0", "host = pm7",
                 "test.ini:22: [vm vm0] host: no host 'pm7'");
    expect_error("mode = postcopy-after=2.5", "mode = fast",
                 "test.ini:5: [consolidator] mode: invalid migration mode "
                 "'fast'");
    expect_error("overload_cpu = 85", "overload_cpu = lots",
                 "test.ini:11: [policy] overload_cpu = 'lots'");
    /* The line of the key the policy names, not of one its message
     * happens to mention first. */
    expect_error("overload_cpu = 85", "overload_cpu = 85\nidle_cpu = 95",
                 "test.ini:12: [policy] idle_cpu (95) must not exceed");
    expect_error("overload_cpu = 85", "w = 1",
                 "test.ini:11: [policy] unknown key 'w'");
    expect_error("name = threshold", "name = magic",
                 "test.ini:10: [policy] name: unknown policy 'magic'");
    expect_error("fill = 1536", "fill = 4096", "[vm vm0] fill:");
    expect_error("memory = 2048", "memory = -5",
                 "test.ini:21: [vm vm0] memory: '-5' is not an integer");
    expect_error("link_rate = 100mbit", "link_rate = fast",
                 "[consolidator] link_rate: 'fast' is not a tc rate");
    /* found by fuzz-config: a rate past any double-to-integer range */
    expect_error("link_rate = 100mbit",
                 "link_rate = 99999999999999999999999999999999999999gbit",
                 "is not a rate from 1kbit to 1000gbit");
    expect_error("link_rate = 100mbit", "link_rate = 0bit",
                 "is not a rate from 1kbit to 1000gbit");
    expect_error("[host pm1]", "[hots pm1]", "[hots pm1]: unknown section");
    expect_error("[host pm1]", "[host pm0]", "test.ini:17: [host pm0]: section is defined twice");
    expect_error("name = t1", "name = T1", "must be lower-case");
    expect_error("workload = cpuload --schedule=20",
                 "workload = cpuload --schedule=20+50",
                 "test.ini:23: [vm vm0] workload: workload 'cpuload "
                 "--schedule=20+50 --dirty-mib=32' contains '+'");
    expect_error("accel = tcg", "accel = hax", "'hax' is not tcg or kvm");
    expect_error("accel = tcg", "accel = tcg\nsend_buffer = 999999999",
                 "test.ini:8: [consolidator] send_buffer");
    expect_error("accel = tcg", "accel = tcg\nfault_window = 0",
                 "test.ini:8: [consolidator] fault_window");
    expect_error("accel = tcg", "accel = tcg\nhot_first = maybe",
                 "test.ini:8: [consolidator] hot_first");
    expect_error("accel = tcg", "accel = tcg\npacing = 150",
                 "test.ini:8: [consolidator] pacing");
    expect_error("cpus = 1-2", "cpus = 1-2\npower_off = true",
                 "[host pm1] power_on: power_off and power_on go together");
    expect_error("cpus = 1-2", "cpus = 1-2\npower_on = true\npower_off =",
                 "[host pm1] power_off: an empty command");
    expect_error("cpus = 1-2", "cpus = 1-2\nwake_delay = -1",
                 "[host pm1] wake_delay");
    expect_error("cpus = 1-2", "cpus = 1-2\nmin_awake = 1e6",
                 "[host pm1] min_awake");
    expect_error("cpus = 1-2", "cpus = 1-2\nwatts = 86, 90",
                 "[host pm1] watts: expected 11 numbers");
    expect_error("cpus = 1-2", "cpus = 1-2\nwatts = 86,89,92,96,99,102,106,"
                 "108,112,110,117", "'110' is not a number of watts");
    expect_error("overload_cpu = 85", "overload_cpu = 85\nspare = 3",
                 "unknown key 'spare' for policy threshold");
}

/* host_work_cpus: where the local driver puts QEMU's non-vCPU threads. */
static void test_host_work_cpus(void **state)
{
    g_autoptr(GString) text = g_string_new(good);
    g_autoptr(GError) err = NULL;

    g_string_replace(text, "cpus = 0\n", "cpus = 0\nhost_work_cpus = 1\n", 1);
    g_autoptr(PpConfig) c = pp_config_parse(text->str, "test.ini", &err);
    if (!c) {
        fail_msg("%s", err->message);
    }
    assert_string_equal(pp_config_host(c, "pm0")->host_work_cpus, "1");
    assert_null(pp_config_host(c, "pm1")->host_work_cpus);
    /* what the VMs use is still the host's cpus */
    assert_int_equal(pp_config_host(c, "pm0")->ncpus, 1);
    expect_error("cpus = 1-2", "cpus = 1-2\nhost_work_cpus = 3-1",
                 "[host pm1] host_work_cpus: invalid CPU list '3-1'");
    expect_error("cpus = 1-2", "cpus = 1-2\nhost_work_cpus =",
                 "[host pm1] host_work_cpus");
    /* the libvirt driver refuses it, saying why */
    g_string_replace(text, "accel = tcg", "accel = tcg\ndriver = libvirt", 1);
    g_autoptr(PpConfig) lv = pp_config_parse(text->str, "test.ini", &err);
    assert_null(lv);
    if (!strstr(err->message, "[host pm0] host_work_cpus: the libvirt driver "
                "leaves QEMU's threads to libvirt")) {
        fail_msg("unclear error: %s", err->message);
    }
}

/* no_relocate: glob patterns, commas or blanks between, empties ignored */
static void test_no_relocate(void **state)
{
    g_autoptr(GString) text = g_string_new(good);
    g_autoptr(GError) err = NULL;
    g_autoptr(PpConfig) none = pp_config_parse(good, "test.ini", &err);

    assert_non_null(none);
    assert_false(pp_config_no_relocate(none, "vm0"));
    g_string_replace(text, "accel = tcg",
                     "accel = tcg\nno_relocate = db-*,  vm0 ,", 1);
    g_autoptr(PpConfig) c = pp_config_parse(text->str, "test.ini", &err);
    if (!c) {
        fail_msg("%s", err->message);
    }
    assert_int_equal(g_strv_length(c->no_relocate), 2);
    assert_true(pp_config_no_relocate(c, "vm0"));
    assert_true(pp_config_no_relocate(c, "db-1"));
    assert_false(pp_config_no_relocate(c, "vm01"));
    assert_false(pp_config_no_relocate(c, "web"));
}

/* guest_net: a NIC per VM on the guest LAN, addresses and MACs given or
 * derived, and unique; the names the network takes are refused. */
static void test_guest_net(void **state)
{
    g_autoptr(GString) text = g_string_new(good);
    g_autoptr(GError) err = NULL;

    g_string_replace(text, "accel = tcg", "accel = tcg\nguest_net = true", 1);
    g_string_append(text, "\n[vm vm1]\nhost = pm1\naddress = 10.78.0.20/24\n"
                    "mac = 52:54:00:00:00:01\n");
    g_autoptr(PpConfig) c = pp_config_parse(text->str, "test.ini", &err);
    if (!c) {
        fail_msg("%s", err->message);
    }
    assert_true(c->guest_net);
    const PpVmSpec *v0 = pp_config_vm(c, "vm0"), *v1 = pp_config_vm(c, "vm1");
    assert_string_equal(v0->address, "10.78.0.10/24");     /* by position */
    assert_true(g_regex_match_simple("^52:54:00:[0-9a-f]{2}:[0-9a-f]{2}:"
                                     "[0-9a-f]{2}$", v0->mac, 0, 0));
    assert_string_equal(v1->address, "10.78.0.20/24");
    assert_string_equal(v1->mac, "52:54:00:00:00:01");
    /* the derived MAC is a function of instance and name */
    g_autoptr(PpConfig) c2 = pp_config_parse(text->str, "test.ini", &err);
    assert_string_equal(pp_config_vm(c2, "vm0")->mac, v0->mac);

    expect_error("fill = 1536", "fill = 1536\naddress = 10.78.0.5/24",
                 "[vm vm0] address: a VM has a network interface only with "
                 "guest_net = true");
    g_autoptr(GString) t2 = g_string_new(text->str);
    g_string_replace(t2, "10.78.0.20/24", "10.78.0.10/24", 1);
    g_autoptr(PpConfig) dup = pp_config_parse(t2->str, "test.ini", &err);
    assert_null(dup);
    assert_non_null(strstr(err->message, "10.78.0.10/24 is another VM's too"));
    g_clear_error(&err);
    const char *bad[][2] = {
        { "10.78.0.20/24", "10.78.0.254/24" },  /* the client's */
        { "10.78.0.20/24", "10.77.0.20/24" },   /* the migration links' */
        { "10.78.0.20/24", "10.78.0.20" },
        { "52:54:00:00:00:01", "53:54:00:00:00:01" },   /* multicast */
        { "52:54:00:00:00:01", "52:54:00:00:00" },
        { "52:54:00:00:00:01", "52:54:00:00:00:01,romfile=x" },
    };
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GString) t = g_string_new(text->str);
        g_string_replace(t, bad[i][0], bad[i][1], 1);
        g_autoptr(PpConfig) x = pp_config_parse(t->str, "test.ini", &err);
        if (x) {
            fail_msg("'%s' was taken", bad[i][1]);
        }
        assert_non_null(strstr(err->message, "[vm vm1]"));
        g_clear_error(&err);
    }
    expect_error("[host pm1]", "[host client]", "host name 'client' is taken");
    expect_error("[host pm1]", "[host sw]", "host name 'sw' is taken");
}

static void test_structure_errors(void **state)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(PpConfig) a = pp_config_parse("[policy]\n", "x.ini", &err);

    assert_null(a);
    assert_non_null(strstr(err->message, "no [consolidator] section"));
    g_clear_error(&err);
    g_autoptr(PpConfig) b = pp_config_parse("[consolidator]\n", "x.ini", &err);
    assert_null(b);
    assert_non_null(strstr(err->message, "no [host NAME] section"));
    g_clear_error(&err);
    g_autoptr(PpConfig) c = pp_config_parse("not an ini file", "x.ini", &err);
    assert_null(c);
    assert_non_null(strstr(err->message, "x.ini"));
    g_clear_error(&err);
    g_autoptr(PpConfig) d = pp_config_load("/nonexistent.ini", &err);
    assert_null(d);
    assert_non_null(strstr(err->message, "'/nonexistent.ini'"));
}

static void test_modes(void **state)
{
    PpMigMode m;
    g_autoptr(GError) err = NULL;
    g_autofree char *s = NULL;

    assert_true(pp_mig_mode_parse("precopy", &m, &err));
    assert_int_equal(m.kind, PP_MIG_PRECOPY);
    assert_true(pp_mig_mode_parse("postcopy-instant", &m, &err));
    assert_int_equal(m.kind, PP_MIG_POSTCOPY_INSTANT);
    assert_false(pp_mig_mode_parse("postcopy-after=99999", &m, &err));
    g_clear_error(&err);
    assert_true(pp_mig_mode_parse("postcopy-after=3", &m, &err));
    s = pp_mig_mode_str(&m);
    assert_string_equal(s, "postcopy-after=3");
    assert_false(pp_mig_mode_parse("postcopy-after=-1", &m, &err));
    g_clear_error(&err);
    assert_false(pp_mig_mode_parse("postcopy-after=", &m, &err));
}

/* SIGHUP: what may change without a restart, and what may not. */
static void test_reload(void **state)
{
    static const struct {
        const char *from, *to, *refused; /* NULL: reloadable */
    } cases[] = {
        { "overload_cpu = 85", "overload_cpu = 70", NULL },
        { "mode = postcopy-after=2.5", "mode = precopy\nautopilot = false\n"
          "max_concurrent_moves = 3\ndecide_interval = 5", NULL },
        { "name = threshold", "name = threshold\nidle_cpu = 10", NULL },
        { "cpus = 1-2", "cpus = 1", "the [host] sections changed" },
        { "memory = 2048", "memory = 3072", "the [vm] sections changed" },
        { "link_rate = 100mbit", "link_rate = 1gbit", "link_rate changed" },
        { "accel = tcg", "accel = kvm", "accel changed" },
        { "state_dir = state", "state_dir = other", "state_dir changed" },
        { "[vm vm0]", "[vm vm9]", "the [vm] sections changed" },
        { "accel = tcg", "accel = tcg\nno_relocate = vm0", NULL },
    };
    g_autoptr(GError) err = NULL;
    g_autoptr(PpConfig) old = pp_config_parse(good, "/etc/pp/test.ini", &err);

    assert_non_null(old);
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GString) text = g_string_new(good);
        g_autoptr(PpConfig) n = NULL;
        GError *e = NULL;

        assert_true(g_string_replace(text, cases[i].from, cases[i].to, 1) == 1);
        n = pp_config_parse(text->str, "/etc/pp/test.ini", &e);
        if (!n) {
            fail_msg("case %zu: %s", i, e->message);
        }
        if (!cases[i].refused) {
            if (!pp_config_reloadable(old, n, &e)) {
                fail_msg("case %zu refused: %s", i, e->message);
            }
            continue;
        }
        assert_false(pp_config_reloadable(old, n, &e));
        if (!strstr(e->message, cases[i].refused)) {
            fail_msg("case %zu: '%s' lacks '%s'", i, e->message,
                     cases[i].refused);
        }
        g_clear_error(&e);
    }

    /* Taking the reloadable part: the old config gets the new settings
     * and policy section, its hosts and VMs stay the same objects. */
    g_autoptr(PpConfig) n = pp_config_parse(
        "[consolidator]\nname = t1\nstate_dir = state\nmode = precopy\n"
        "no_relocate = vm0\n"
        "autopilot = false\nlink_rate = 100mbit\naccel = tcg\n"
        "[policy]\nname = threshold\noverload_cpu = 70\n"
        "[host pm0]\ncpus = 0\nmemory = 4096\n[host pm1]\ncpus = 1-2\n"
        "[vm vm0]\nmemory = 2048\nhost = pm0\n"
        "workload = cpuload --schedule=20 --dirty-mib=32\nfill = 1536\n",
        "/etc/pp/test.ini", &err);
    assert_non_null(n);
    assert_true(pp_config_reloadable(old, n, NULL));
    gpointer host0 = old->hosts->pdata[0];
    pp_config_take_reloadable(old, n);
    assert_ptr_equal(old->hosts->pdata[0], host0);
    assert_int_equal(old->mode.kind, PP_MIG_PRECOPY);
    assert_false(old->autopilot);
    assert_true(pp_config_no_relocate(old, "vm0"));
    g_autofree char *oc = g_key_file_get_string(old->kf, "policy",
                                                "overload_cpu", NULL);
    assert_string_equal(oc, "70");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_host_work_cpus),
        cmocka_unit_test(test_no_relocate),
        cmocka_unit_test(test_guest_net),
        cmocka_unit_test(test_errors_name_file_line_key),
        cmocka_unit_test(test_structure_errors),
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_reload),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
