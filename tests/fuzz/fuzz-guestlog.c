/*
 * libFuzzer harness: the guest console record parser (guestlog.c).  The
 * console is written by the guest: untrusted text.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdint.h>
#include <string.h>

#include "guestlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *text = g_strndup((const char *)data, size);
    GPtrArray *recs = pp_records_parse(text);

    for (guint i = 0; i < recs->len; i++) {
        const PpRecord *r = recs->pdata[i];
        pp_record_get(r, "t");
        pp_record_get_int(r, "mib", -1);
        pp_record_get_int(r, "bad", -1);
    }
    pp_records_find(recs, 0, "memverify", "done");
    pp_records_find(recs, 1, NULL, NULL);
    g_ptr_array_unref(recs);
    return 0;
}
