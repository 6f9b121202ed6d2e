/*
 * Unit tests: guest console record parser.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "guestlog.h"

static void test_parse_basic(void **state)
{
    g_autoptr(GPtrArray) r = pp_records_parse(
        "PP memtouch rate t=12.500000 units=1024 total=4096\n");
    PpRecord *rec;

    assert_int_equal(r->len, 1);
    rec = r->pdata[0];
    assert_string_equal(rec->prog, "memtouch");
    assert_string_equal(rec->event, "rate");
    assert_true(fabs(rec->t - 12.5) < 1e-9);
    assert_int_equal(pp_record_get_int(rec, "units", -1), 1024);
    assert_int_equal(pp_record_get_int(rec, "total", -1), 4096);
    assert_null(pp_record_get(rec, "missing"));
    assert_int_equal(pp_record_get_int(rec, "missing", 7), 7);
}

static void test_skips_noise(void **state)
{
    /* Kernel messages, echo, CRs and a record glued after other output. */
    g_autoptr(GPtrArray) r = pp_records_parse(
        "[    0.000000] Linux version 6.1.0\r\n"
        "random text PP\n"
        "PP\n"
        "PP onlyprog\n"
        "PP a=b c=d\n"
        "verify\r\n"
        "login: PP memverify check t=3.0 bad=0 first_bad=-1\r\n"
        "PP init ready t=2.25 wl=memverify\n");

    assert_int_equal(r->len, 2);
    assert_string_equal(((PpRecord *)r->pdata[0])->event, "check");
    assert_int_equal(pp_record_get_int(r->pdata[0], "first_bad", 0), -1);
    assert_string_equal(((PpRecord *)r->pdata[1])->prog, "init");
}

static void test_bad_values(void **state)
{
    g_autoptr(GPtrArray) r = pp_records_parse(
        "PP x y t=notanumber n=12abc =empty novalue hex=0x10\n");
    PpRecord *rec;

    assert_int_equal(r->len, 1);
    rec = r->pdata[0];
    assert_true(isnan(rec->t));
    assert_int_equal(pp_record_get_int(rec, "n", -5), -5);
    assert_int_equal(pp_record_get_int(rec, "hex", -5), 16);
    assert_null(pp_record_get(rec, ""));
}

static void test_find(void **state)
{
    g_autoptr(GPtrArray) r = pp_records_parse(
        "PP a ready t=1\nPP b pass t=2\nPP a pass t=3\nPP a check t=4\n");

    assert_int_equal(pp_records_find(r, 0, "a", "pass"), 2);
    assert_int_equal(pp_records_find(r, 0, NULL, "pass"), 1);
    assert_int_equal(pp_records_find(r, 2, NULL, "pass"), 2);
    assert_int_equal(pp_records_find(r, 3, NULL, "pass"), -1);
    assert_int_equal(pp_records_find(r, 0, "c", NULL), -1);
    assert_int_equal(pp_records_find(r, 99, NULL, NULL), -1);
}

static void test_load_missing_file(void **state)
{
    g_autoptr(GPtrArray) r = pp_records_load("/nonexistent/serial.log");

    assert_non_null(r);
    assert_int_equal(r->len, 0);
}

static void test_cmdline(void **state)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *a = pp_guest_cmdline(
        "cpuload  --schedule=0,50,100 --step=5", 768, NULL, &err);
    g_autofree char *b = pp_guest_cmdline(NULL, 0, NULL, &err);
    g_autofree char *c = pp_guest_cmdline("memverify", 0, NULL, &err);
    g_autofree char *n = pp_guest_cmdline("httpd -f -p 80", 0,
                                          "10.78.0.11/24", &err);

    assert_string_equal(a, "console=ttyS0 quiet panic=-1 pp.wl=cpuload "
                        "pp.args=--schedule=0,50,100+--step=5 pp.fill=768");
    assert_string_equal(b, "console=ttyS0 quiet panic=-1");
    assert_string_equal(c, "console=ttyS0 quiet panic=-1 pp.wl=memverify");
    assert_string_equal(n, "console=ttyS0 quiet panic=-1 pp.wl=httpd "
                        "pp.args=-f+-p+80 pp.net=10.78.0.11/24");
    assert_null(pp_guest_cmdline("x --a=1+2", 0, NULL, &err));
    assert_non_null(strstr(err->message, "'+'"));
    g_clear_error(&err);
    assert_null(pp_guest_cmdline("x \"y\"", 0, NULL, &err));
    g_clear_error(&err);
    assert_null(pp_guest_cmdline("   ", 0, NULL, &err));
    g_clear_error(&err);
    /* an address the guest's init could not use, or that would carry
     * more onto the command line */
    assert_null(pp_guest_cmdline(NULL, 0, "10.78.0.11", &err));
    assert_non_null(strstr(err->message, "A.B.C.D/P"));
    g_clear_error(&err);
    assert_null(pp_guest_cmdline(NULL, 0, "10.78.0.11/24 pp.wl=x", &err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_basic),
        cmocka_unit_test(test_skips_noise),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_load_missing_file),
        cmocka_unit_test(test_cmdline),
    };
    return cmocka_run_group_tests_name("guestlog", tests, NULL, NULL);
}
