/*
 * consolidator command-line pieces shared between its source files.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef PP_CLI_H
#define PP_CLI_H

#include <glib.h>
#include <stdbool.h>

/* consolidator simulate (argv[0] is the command name). */
int pp_cli_simulate(int argc, char **argv);
/* consolidator policies: the registered policies. */
int pp_cli_policies(bool json);

#endif
