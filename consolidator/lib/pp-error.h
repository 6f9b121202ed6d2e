/*
 * postpack error domain.
 *
 * Library code reports failures with GError following QEMU's Error rules:
 * the GError ** argument comes last, functions also return a bool / pointer
 * / negative value, callers never inspect *errp to learn whether a call
 * failed, and messages are one phrase without a trailing period, with user
 * input quoted.  Library code never logs.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef PP_ERROR_H
#define PP_ERROR_H

#include <glib.h>

#define PP_ERROR (pp_error_quark())

typedef enum PpErrorCode {
    PP_ERROR_FAILED,        /* anything without a better code */
    PP_ERROR_INVALID,       /* bad argument or configuration */
    PP_ERROR_IO,            /* system call failed */
    PP_ERROR_TIMEOUT,       /* peer did not answer in time */
    PP_ERROR_PROTOCOL,      /* peer said something malformed */
    PP_ERROR_DISCONNECTED,  /* peer went away */
    PP_ERROR_COMMAND,       /* QMP command returned an error */
    PP_ERROR_EXITED,        /* child process exited */
    PP_ERROR_BUSY,          /* not now (e.g. a host not empty yet) */
} PpErrorCode;

GQuark pp_error_quark(void);

#endif
