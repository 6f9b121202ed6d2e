/*
 * libFuzzer harness: the INI configuration (config.c, and the policy's
 * own settings it hands to the policy's create()).  The input is the
 * file's text; every outcome but a crash or a leak is fine.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdint.h>
#include <string.h>

#include "config.h"
#include "guestlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *text = g_strndup((const char *)data, size);
    g_autoptr(GError) err = NULL;
    PpConfig *c;

    if (size > 64 * 1024) {
        return 0;
    }
    c = pp_config_parse(text, "/fuzz/postpack.ini", &err);
    if (c) {
        g_free(pp_mig_mode_str(&c->mode));
        for (guint i = 0; i < c->vms->len; i++) {
            const PpVmSpec *v = c->vms->pdata[i];

            g_free(pp_guest_cmdline(v->workload, v->fill_mib, v->address, NULL));
            pp_config_vm(c, v->name);
        }
        pp_config_free(c);
    }
    return 0;
}
