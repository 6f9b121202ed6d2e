/*
 * Unit tests: typed reads of untrusted JSON (ppjson.c).  Every accessor
 * must return the value only when it has the type asked for, and say
 * which member was wrong otherwise; absent members are fine only for the
 * _opt_ variants.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "pp-error.h"
#include "migqmp.h"
#include "ppjson.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_object, json_object_put)

static json_object *parse(const char *s)
{
    json_object *o = json_tokener_parse(s);
    assert_non_null(o);
    return o;
}

static void assert_protocol_error(GError *err, const char *needle)
{
    assert_non_null(err);
    assert_true(g_error_matches(err, PP_ERROR, PP_ERROR_PROTOCOL));
    if (!strstr(err->message, needle)) {
        fail_msg("'%s' does not mention '%s'", err->message, needle);
    }
}

static void test_values(void **state)
{
    g_autoptr(json_object) o = parse(
        "{\"status\": \"active\", \"ram\": {\"transferred\": 123456789012,"
        " \"rate\": 1.5, \"n\": 3}, \"ok\": true, \"list\": [1, 2]}");
    const char *s = NULL;
    gint64 i = 0;
    double d = 0;
    bool b = false;
    json_object *a = NULL, *obj = NULL;

    assert_true(pp_json_get_str(o, "status", &s, NULL));
    assert_string_equal(s, "active");
    assert_true(pp_json_get_int(o, "ram.transferred", &i, NULL));
    assert_true(i == 123456789012LL);
    assert_true(pp_json_get_num(o, "ram.rate", &d, NULL));
    assert_true(d == 1.5);
    /* an integer is a number too */
    assert_true(pp_json_get_num(o, "ram.n", &d, NULL));
    assert_true(d == 3.0);
    assert_true(pp_json_get_bool(o, "ok", &b, NULL));
    assert_true(b);
    assert_true(pp_json_get_arr(o, "list", &a, NULL));
    assert_int_equal(json_object_array_length(a), 2);
    assert_true(pp_json_get_obj(o, "ram", &obj, NULL));
}

static void test_null_and_wrong_types(void **state)
{
    g_autoptr(json_object) o = parse(
        "{\"status\": null, \"n\": \"12\", \"s\": 12, \"b\": 1, "
        "\"ram\": null, \"rate\": \"fast\", \"arr\": {}, \"obj\": []}");
    const char *s = "untouched";
    gint64 i = -7;
    double d = -7;
    bool b = false;
    json_object *v = NULL;
    GError *err = NULL;

    assert_false(pp_json_get_str(o, "status", &s, &err));
    assert_protocol_error(err, "'status' is null, expected a string");
    g_clear_error(&err);
    assert_string_equal(s, "untouched");
    /* optional does not mean null is fine */
    assert_false(pp_json_opt_str(o, "status", &s, &err));
    assert_protocol_error(err, "'status' is null");
    g_clear_error(&err);
    /* no coercion: "12" is not 12, 12 is not "12", 1 is not true */
    assert_false(pp_json_get_int(o, "n", &i, &err));
    assert_protocol_error(err, "'n' is a string, expected an integer");
    g_clear_error(&err);
    assert_int_equal(i, -7);
    assert_false(pp_json_get_str(o, "s", &s, &err));
    assert_protocol_error(err, "'s' is an integer, expected a string");
    g_clear_error(&err);
    assert_false(pp_json_get_bool(o, "b", &b, &err));
    assert_protocol_error(err, "expected a boolean");
    g_clear_error(&err);
    assert_false(pp_json_get_num(o, "rate", &d, &err));
    assert_protocol_error(err, "'rate' is a string, expected a number");
    g_clear_error(&err);
    assert_false(pp_json_get_arr(o, "arr", &v, &err));
    assert_protocol_error(err, "expected an array");
    g_clear_error(&err);
    assert_false(pp_json_get_obj(o, "obj", &v, &err));
    assert_protocol_error(err, "expected an object");
    g_clear_error(&err);
    /* a null parent on the path */
    assert_false(pp_json_opt_int(o, "ram.transferred", &i, &err));
    assert_protocol_error(err, "member 'ram' is null, expected an object");
    g_clear_error(&err);
}

static void test_missing(void **state)
{
    g_autoptr(json_object) o = parse("{\"ram\": {}}");
    g_autoptr(json_object) arr = parse("[1]");
    gint64 i = 42;
    const char *s = "kept";
    GError *err = NULL;

    assert_false(pp_json_get_int(o, "ram.transferred", &i, &err));
    assert_protocol_error(err, "'ram.transferred' is missing");
    g_clear_error(&err);
    assert_false(pp_json_get_str(o, "status", &s, &err));
    assert_protocol_error(err, "'status' is missing");
    g_clear_error(&err);
    /* optional: absent member or absent parent leaves the value alone */
    assert_true(pp_json_opt_int(o, "ram.transferred", &i, NULL));
    assert_int_equal(i, 42);
    assert_true(pp_json_opt_int(o, "disk.total", &i, NULL));
    assert_int_equal(i, 42);
    assert_true(pp_json_opt_str(o, "status", &s, NULL));
    assert_string_equal(s, "kept");
    /* not an object at all (a reply that is an array, or null) */
    assert_false(pp_json_opt_int(arr, "status", &i, &err));
    assert_protocol_error(err, "expected an object holding 'status', got "
                          "an array");
    g_clear_error(&err);
    assert_false(pp_json_get_str(NULL, "status", &s, &err));
    assert_protocol_error(err, "got null");
    g_clear_error(&err);
}

static void test_range(void **state)
{
    g_autoptr(json_object) o = parse(
        "{\"big\": 99999999999999999999999, \"max\": 9223372036854775807,"
        " \"neg\": -5}");
    gint64 i = 0;
    GError *err = NULL;

    assert_false(pp_json_get_int(o, "big", &i, &err));
    assert_non_null(err);
    g_clear_error(&err);
    assert_true(pp_json_get_int(o, "max", &i, NULL));
    assert_true(i == G_MAXINT64);
    assert_true(pp_json_get_int(o, "neg", &i, NULL));
    assert_true(i == -5);
}

static void test_is(void **state)
{
    g_autoptr(json_object) o = parse("[{\"a\": 1}, null, \"x\"]");
    GError *err = NULL;

    assert_true(pp_json_is(json_object_array_get_idx(o, 0), json_type_object,
                           "element 0", NULL));
    assert_false(pp_json_is(json_object_array_get_idx(o, 1),
                            json_type_object, "element 1", &err));
    assert_protocol_error(err, "element 1 is null, expected an object");
    g_clear_error(&err);
    assert_false(pp_json_is(json_object_array_get_idx(o, 2), json_type_int,
                            "element 2", &err));
    assert_protocol_error(err, "element 2 is a string, expected an integer");
    g_clear_error(&err);
}

/* The hot-set check: what x-query-hot-set returns, nothing else. */
static void test_hot_set(void **state)
{
    /* 20 pages: 3 bytes; 0x0f 0x01 0xff -> 4 + 1 + 4 (bits past page 20
     * do not count) */
    g_autoptr(json_object) ok = parse(
        "[{\"id\": \"pc.ram\", \"pages\": 20, \"page-size\": 4096, "
        "\"bitmap\": \"DwH/\", \"fault-order\": [19, 0, 3]}, "
        "{\"id\": \"vga.vram\", \"pages\": 8, "
        "\"page-size\": 4096, \"bitmap\": \"gA==\"}]");
    static const struct {
        const char *json, *needle;
    } bad[] = {
        { "{}", "hot set is an object, expected an array" },
        { "[null]", "block 0: expected an object holding 'id', got null" },
        { "[{\"id\": 5, \"pages\": 8, \"page-size\": 4096, "
          "\"bitmap\": \"gA==\"}]", "'id' is an integer" },
        { "[{\"id\": \"a\", \"pages\": \"8\", \"page-size\": 4096, "
          "\"bitmap\": \"gA==\"}]", "'pages' is a string" },
        { "[{\"id\": \"a\", \"pages\": 8, \"page-size\": 4096, "
          "\"bitmap\": \"gA==\"}, {\"id\": \"a\", \"pages\": 8, "
          "\"page-size\": 4096, \"bitmap\": \"gA==\"}]", "listed twice" },
        { "[{\"id\": \"a\", \"pages\": 0, \"page-size\": 4096, "
          "\"bitmap\": \"\"}]", "is not a RAM block" },
        { "[{\"id\": \"a\", \"pages\": 8, \"page-size\": 4000, "
          "\"bitmap\": \"gA==\"}]", "is not a RAM block" },
        { "[{\"id\": \"a\", \"pages\": 16, \"page-size\": 4096, "
          "\"bitmap\": \"gA==\"}]", "not base64 of 2 bytes" },
        { "[{\"id\": \"a\", \"pages\": 8, \"page-size\": 4096, "
          "\"bitmap\": \"g=A=\"}]", "not base64" },
        { "[{\"id\": \"a\", \"pages\": 8, \"page-size\": 4096, "
          "\"bitmap\": \"g*==\"}]", "not base64" },
        { "[{\"id\": \"\", \"pages\": 8, \"page-size\": 4096, "
          "\"bitmap\": \"gA==\"}]", "bad id" },
        { "[{\"id\": \"a\", \"pages\": 8, \"page-size\": 4096, "
          "\"bitmap\": \"gA==\", \"fault-order\": 3}]",
          "fault-order is not an array" },
        { "[{\"id\": \"a\", \"pages\": 8, \"page-size\": 4096, "
          "\"bitmap\": \"gA==\", \"fault-order\": [1, 8]}]",
          "fault-order entry 1 is not a page" },
        { "[{\"id\": \"a\", \"pages\": 8, \"page-size\": 4096, "
          "\"bitmap\": \"gA==\", \"fault-order\": [-1]}]",
          "fault-order entry 0 is not a page" },
        { "[{\"id\": \"a\", \"pages\": 8, \"page-size\": 4096, "
          "\"bitmap\": \"gA==\", \"fault-order\": [\"1\"]}]",
          "fault-order entry 0 is not a page" },
    };
    guint64 hot = 0;

    assert_true(pp_hot_set_check(ok, &hot, NULL));
    assert_int_equal(hot, 4 + 1 + 4 + 1);
    /* Stripped of the source's fault record, the set still checks. */
    pp_hot_set_strip_faults(ok);
    assert_false(json_object_object_get_ex(json_object_array_get_idx(ok, 0),
                                           "fault-order", NULL));
    assert_true(pp_hot_set_check(ok, &hot, NULL));
    assert_int_equal(hot, 4 + 1 + 4 + 1);
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(json_object) o = parse(bad[i].json);
        GError *err = NULL;

        if (pp_hot_set_check(o, NULL, &err)) {
            fail_msg("accepted %s", bad[i].json);
        }
        assert_protocol_error(err, bad[i].needle);
        g_clear_error(&err);
    }
}

/* query-migrate's x-postcopy counters: taken, merged, all or nothing. */
static void test_postcopy_stats(void **state)
{
    PpPostcopyStats st;
    g_autoptr(GError) err = NULL;

    pp_postcopy_stats_init(&st);
    assert_int_equal(st.hot_bytes, -1);
    assert_int_equal(st.fault_record_bytes, -1);
    {
        g_autoptr(json_object) src = parse(
            "{\"status\": \"completed\", \"x-postcopy\": "
            "{\"hot-pages\": 12, \"hot-pages-faulted\": 3, "
            "\"hot-bytes\": 1048576, \"hot-samples\": 11, "
            "\"hot-sample-max-us\": 900, \"hot-sample-mean-us\": 400}}");
        assert_true(pp_postcopy_stats_update(&st, src, NULL));
    }
    assert_int_equal(st.hot_pages, 12);
    assert_int_equal(st.hot_faulted, 3);
    assert_int_equal(st.hot_bytes, 1048576);
    assert_int_equal(st.hot_samples, 11);
    assert_int_equal(st.hot_sample_max_us, 900);
    assert_int_equal(st.hot_sample_mean_us, 400);
    assert_int_equal(st.remote_faults, -1);
    {
        /* the destination's reply keeps the source's counters */
        g_autoptr(json_object) dst = parse(
            "{\"x-postcopy\": {\"remote-faults\": 5, "
            "\"fault-record-bytes\": 40}}");
        assert_true(pp_postcopy_stats_update(&st, dst, NULL));
    }
    assert_int_equal(st.remote_faults, 5);
    assert_int_equal(st.fault_record_bytes, 40);
    assert_int_equal(st.hot_bytes, 1048576);
    {
        /* one bad member: nothing changes */
        g_autoptr(json_object) bad = parse(
            "{\"x-postcopy\": {\"remote-faults\": 9, "
            "\"hot-bytes\": \"lots\"}}");
        assert_false(pp_postcopy_stats_update(&st, bad, &err));
        assert_protocol_error(err, "hot-bytes");
    }
    assert_int_equal(st.remote_faults, 5);
    assert_int_equal(st.hot_bytes, 1048576);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_null_and_wrong_types),
        cmocka_unit_test(test_missing),
        cmocka_unit_test(test_range),
        cmocka_unit_test(test_is),
        cmocka_unit_test(test_hot_set),
        cmocka_unit_test(test_postcopy_stats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
