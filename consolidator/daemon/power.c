/*
 * Host power: suspend an empty host, wake one before VMs move to it.
 *
 * One state machine per host:
 *
 *   ON --power_off--> SUSPENDING --command ok--> OFF
 *   OFF --power_on--> WAKING --command ok, then wake_delay--> ON
 *
 * A failed power_off command leaves the host ON; a failed power_on
 * leaves it OFF; both with a warning event.  Without commands (the local
 * driver) the states are emulated: power-off is immediate, power-on
 * takes wake_delay; a host that is not ON runs nothing and takes no
 * move.  The libvirt driver needs the commands (e.g. `ssh root@h1
 * systemctl suspend`, `wakeonlan MAC`); it neither samples nor reconnects
 * to a host that is not ON.  Commands run with /bin/sh -c, PP_HOST set to
 * the host's name, without blocking the main loop.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "daemon.h"
#include "pp-error.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>

const char *pp_host_power_name(HostPower p)
{
    switch (p) {
    case HOST_ON:
        return "on";
    case HOST_SUSPENDING:
        return "suspending";
    case HOST_OFF:
        return "off";
    case HOST_WAKING:
        return "waking";
    }
    return "?";
}

static void set_power(Host *h, HostPower p)
{
    h->power = p;
    h->power_since = pp_wall_now();
}

/* Nothing runs on @h and no move comes to or leaves it. */
static bool host_empty(PpDaemon *d, Host *h, char **why)
{
    for (guint i = 0; i < d->vms->len; i++) {
        Vm *vm = d->vms->pdata[i];
        if (vm->host == h) {
            *why = g_strdup_printf("VM %s is on it", vm->name);
            return false;
        }
        if (vm->job && (vm->job->to == h || vm->job->from == h)) {
            *why = g_strdup_printf("VM %s is moving to or from it", vm->name);
            return false;
        }
    }
    return true;
}

static gboolean on_awake(gpointer opaque)
{
    Host *h = opaque;

    h->power_timer = 0;
    set_power(h, HOST_ON);
    h->woken = true;
    h->hold_said = false;
    pp_daemon_event(h->d, "power", NULL, "%s is awake", h->name);
    return G_SOURCE_REMOVE;
}

static void awake_later(Host *h)
{
    if (h->wake_delay > 0) {
        h->power_timer = g_timeout_add((guint)(h->wake_delay * 1000),
                                       on_awake, h);
    } else {
        on_awake(h);
    }
}

static void on_command_exit(GPid pid, gint status, gpointer opaque)
{
    Host *h = opaque;
    g_autoptr(GError) err = NULL;
    bool ok = g_spawn_check_wait_status(status, &err);

    g_spawn_close_pid(pid);
    h->power_pid = 0;
    h->power_watch = 0;
    if (h->power == HOST_SUSPENDING) {
        if (ok) {
            set_power(h, HOST_OFF);
            pp_daemon_event(h->d, "power", NULL, "%s is off", h->name);
        } else {
            set_power(h, HOST_ON);
            pp_daemon_event(h->d, "warning", NULL, "power_off of %s failed "
                            "(%s); it stays on", h->name, err->message);
        }
    } else if (h->power == HOST_WAKING) {
        if (ok) {
            awake_later(h);
        } else {
            set_power(h, HOST_OFF);
            pp_daemon_event(h->d, "warning", NULL, "power_on of %s failed "
                            "(%s); it stays off", h->name, err->message);
        }
    }
}

static bool run_command(Host *h, const char *cmd, GError **errp)
{
    g_auto(GStrv) env = g_environ_setenv(g_get_environ(), "PP_HOST",
                                         h->name, TRUE);
    const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
    GPid pid;

    if (!g_spawn_async(NULL, (char **)argv, env,
                       G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDIN_FROM_DEV_NULL,
                       NULL, NULL, &pid, errp)) {
        return false;
    }
    h->power_pid = pid;
    h->power_watch = g_child_watch_add(pid, on_command_exit, h);
    return true;
}

bool pp_host_power_off(PpDaemon *d, Host *h, const char *reason,
                       GError **errp)
{
    g_autofree char *why = NULL;

    if (h->power != HOST_ON) {
        g_set_error(errp, PP_ERROR, PP_ERROR_BUSY, "host '%s' is %s",
                    h->name, pp_host_power_name(h->power));
        return false;
    }
    if (!host_empty(d, h, &why)) {
        g_set_error(errp, PP_ERROR, PP_ERROR_BUSY, "host '%s' is not "
                    "empty: %s", h->name, why);
        return false;
    }
    if (!h->power_off_cmd && !d->drv->ops->owns_vms) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID, "host '%s' has no "
                    "power_off command", h->name);
        return false;
    }
    pp_daemon_event(d, "power", NULL, "suspending %s: %s", h->name, reason);
    if (!h->power_off_cmd) {
        set_power(h, HOST_OFF);     /* emulated: at once */
        pp_daemon_event(d, "power", NULL, "%s is off", h->name);
        return true;
    }
    set_power(h, HOST_SUSPENDING);
    if (!run_command(h, h->power_off_cmd, errp)) {
        set_power(h, HOST_ON);
        g_prefix_error(errp, "power_off of %s: ", h->name);
        return false;
    }
    return true;
}

bool pp_host_power_on(PpDaemon *d, Host *h, const char *reason,
                      GError **errp)
{
    if (h->power == HOST_ON || h->power == HOST_WAKING) {
        return true;                /* nothing to do */
    }
    if (h->power == HOST_SUSPENDING) {
        g_set_error(errp, PP_ERROR, PP_ERROR_BUSY, "host '%s' is still "
                    "suspending", h->name);
        return false;
    }
    if (!h->power_on_cmd && !d->drv->ops->owns_vms) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID, "host '%s' has no "
                    "power_on command", h->name);
        return false;
    }
    pp_daemon_event(d, "power", NULL, "waking %s: %s", h->name, reason);
    set_power(h, HOST_WAKING);
    if (!h->power_on_cmd) {
        awake_later(h);             /* emulated */
        return true;
    }
    if (!run_command(h, h->power_on_cmd, errp)) {
        set_power(h, HOST_OFF);
        g_prefix_error(errp, "power_on of %s: ", h->name);
        return false;
    }
    return true;
}

void pp_host_power_release(Host *h)
{
    if (h->power_timer) {
        g_source_remove(h->power_timer);
        h->power_timer = 0;
    }
    if (h->power_watch) {
        /* the command keeps running; its exit is no longer watched */
        g_source_remove(h->power_watch);
        h->power_watch = 0;
    }
}
