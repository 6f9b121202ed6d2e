/*
 * libFuzzer harness: the hot-set check (migqmp.c) the daemon applies to
 * x-query-hot-set replies before keeping them for the next move.  The
 * input is JSON text.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdint.h>
#include <string.h>

#include "migqmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_tokener *tok = json_tokener_new();
    json_object *o = json_tokener_parse_ex(tok, (const char *)data,
                                           (int)MIN(size, (size_t)G_MAXINT));
    guint64 hot;

    if (o) {
        pp_hot_set_check(o, &hot, NULL);
        json_object_put(o);
    }
    json_tokener_free(tok);
    return 0;
}
