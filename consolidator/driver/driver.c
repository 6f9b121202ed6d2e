/*
 * Driver registry (see driver.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "driver.h"
#include "pp-error.h"

#include <string.h>

extern const PpDriverOps pp_driver_local;
extern const PpDriverOps pp_driver_libvirt;

const PpDriverOps *const pp_drivers[] = {
    &pp_driver_local,
    &pp_driver_libvirt,
    NULL,
};

const PpDriverOps *pp_driver_find(const char *name, GError **errp)
{
    g_autoptr(GString) known = g_string_new(NULL);

    for (const PpDriverOps *const *p = pp_drivers; *p; p++) {
        if (strcmp((*p)->name, name) == 0) {
            return *p;
        }
        g_string_append_printf(known, "%s%s", known->len ? ", " : "",
                               (*p)->name);
    }
    g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                "unknown driver '%s' (known: %s)", name, known->str);
    return NULL;
}
