/*
 * Prometheus metrics: GET /metrics in the text exposition format (0.0.4),
 * served by libsoup's SoupServer on the daemon's main loop, so a scrape
 * reads the daemon's state without locks.  Off unless `metrics =
 * ADDR:PORT` is configured.  What it exports is what an operator graphs
 * and alerts on: host and VM CPU, memory, network and disk (last sample;
 * absent when not measured, never 0), VM states, moves by mode and
 * outcome since the daemon started, switchover and total time of
 * finished moves, post-copy page requests and remote faults.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "daemon.h"
#include "pp-error.h"

#include <libsoup/soup.h>
#include <math.h>
#include <string.h>

/* A label value, escaped as the format wants. */
static char *label(const char *v)
{
    GString *s = g_string_new(NULL);

    for (const char *c = v ? v : ""; *c; c++) {
        if (*c == '\\' || *c == '"') {
            g_string_append_c(s, '\\');
            g_string_append_c(s, *c);
        } else if (*c == '\n') {
            g_string_append(s, "\\n");
        } else {
            g_string_append_c(s, *c);
        }
    }
    return g_string_free(s, FALSE);
}

static void help(GString *o, const char *name, const char *type,
                 const char *text)
{
    g_string_append_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, text,
                           name, type);
}

/* One sample; nothing when @v is NAN (not measured). */
static void sample(GString *o, const char *name, const char *labels,
                   double v)
{
    if (!isnan(v)) {
        g_string_append_printf(o, "%s{%s} %.17g\n", name, labels, v);
    }
}

static const char *const vm_states[] = { "running", "migrating", "lost",
                                         "broken" };

char *pp_metrics_text(PpDaemon *d)
{
    GString *o = g_string_new(NULL);
    g_autofree char *inst = label(d->cfg->instance);
    g_autoptr(GHashTable) moves = g_hash_table_new_full(g_str_hash,
                                                        g_str_equal, g_free,
                                                        NULL);

    help(o, "postpack_info", "gauge", "The daemon: instance, driver, policy");
    g_string_append_printf(o, "postpack_info{instance=\"%s\",driver=\"%s\","
                           "policy=\"%s\"} 1\n", inst, d->drv->ops->name,
                           d->cfg->policy_name);

    help(o, "postpack_host_up", "gauge", "1 when the host is reachable");
    for (guint i = 0; i < d->hosts->len; i++) {
        Host *h = d->hosts->pdata[i];
        g_autofree char *l = label(h->name);
        g_autofree char *ls = g_strdup_printf("host=\"%s\"", l);
        sample(o, "postpack_host_up", ls, h->up);
    }
    help(o, "postpack_host_awake", "gauge",
         "1 when the host is on (0: suspending, suspended or waking)");
    for (guint i = 0; i < d->hosts->len; i++) {
        Host *h = d->hosts->pdata[i];
        g_autofree char *l = label(h->name);
        g_autofree char *ls = g_strdup_printf("host=\"%s\"", l);
        sample(o, "postpack_host_awake", ls, h->power == HOST_ON);
    }
    help(o, "postpack_host_cpu_ratio", "gauge",
         "Busy share of the host's CPUs, last sample (0-1)");
    help(o, "postpack_host_memory_used_bytes", "gauge",
         "Memory in use on the host, last sample");
    help(o, "postpack_host_memory_bytes", "gauge", "Memory of the host");
    for (guint i = 0; i < d->hosts->len; i++) {
        Host *h = d->hosts->pdata[i];
        g_autofree char *l = label(h->name);
        g_autofree char *ls = g_strdup_printf("host=\"%s\"", l);
        sample(o, "postpack_host_cpu_ratio", ls, h->cpu / 100);
        sample(o, "postpack_host_memory_used_bytes", ls,
               h->mem_used_mib * 1048576);
        sample(o, "postpack_host_memory_bytes", ls,
               !isnan(h->mem_total_mib) ? h->mem_total_mib * 1048576 :
               h->mem_mib ? h->mem_mib * 1048576.0 : NAN);
    }

    help(o, "postpack_vm_state", "gauge", "1 for the VM's current state");
    help(o, "postpack_vm_cpu_ratio", "gauge",
         "The VM's vCPU time per second, last sample (1 = one core)");
    help(o, "postpack_vm_process_cpu_ratio", "gauge",
         "Its whole QEMU's CPU time per second (1 = one core)");
    help(o, "postpack_vm_memory_bytes", "gauge", "Memory the VM was given");
    help(o, "postpack_vm_memory_used_bytes", "gauge",
         "Memory it holds on the host (balloon), last sample");
    help(o, "postpack_vm_network_receive_bytes_per_second", "gauge",
         "All its interfaces, last sample");
    help(o, "postpack_vm_network_transmit_bytes_per_second", "gauge",
         "All its interfaces, last sample");
    help(o, "postpack_vm_disk_read_bytes_per_second", "gauge",
         "All its disks, last sample");
    help(o, "postpack_vm_disk_write_bytes_per_second", "gauge",
         "All its disks, last sample");
    for (guint i = 0; i < d->vms->len; i++) {
        Vm *vm = d->vms->pdata[i];
        g_autofree char *n = label(vm->name);
        g_autofree char *h = label(vm_guest_host(vm)->name);
        g_autofree char *ls = g_strdup_printf("vm=\"%s\",host=\"%s\"", n, h);

        for (guint s = 0; s < G_N_ELEMENTS(vm_states); s++) {
            g_string_append_printf(o, "postpack_vm_state{vm=\"%s\","
                                   "state=\"%s\"} %d\n", n, vm_states[s],
                                   vm->state == (VmState)s);
        }
        sample(o, "postpack_vm_cpu_ratio", ls, vm->cpu / 100);
        sample(o, "postpack_vm_process_cpu_ratio", ls, vm->proc_cpu / 100);
        sample(o, "postpack_vm_memory_bytes", ls, vm->mem_mib * 1048576.0);
        sample(o, "postpack_vm_memory_used_bytes", ls,
               vm->last.mem_used_mib * 1048576);
        sample(o, "postpack_vm_network_receive_bytes_per_second", ls,
               vm->last.net_rx_bps);
        sample(o, "postpack_vm_network_transmit_bytes_per_second", ls,
               vm->last.net_tx_bps);
        sample(o, "postpack_vm_disk_read_bytes_per_second", ls,
               vm->last.disk_rd_bps);
        sample(o, "postpack_vm_disk_write_bytes_per_second", ls,
               vm->last.disk_wr_bps);
    }

    /* Moves of this run, by mode and outcome. */
    double sw_sum = 0, dur_sum = 0;
    guint sw_n = 0, dur_n = 0, active = 0, paused = 0;
    gint64 requests = 0, faults = 0, pauses = 0, recoveries = 0;
    for (guint i = 0; i < d->jobs->len; i++) {
        Job *job = d->jobs->pdata[i];
        g_autofree char *mode = pp_mig_mode_str(&job->mode);
        char *key = g_strdup_printf("mode=\"%s\",outcome=\"%s\"", mode,
                                    job_state_name(job->state));
        gpointer n = g_hash_table_lookup(moves, key);

        pauses += job->pauses;
        recoveries += job->recoveries;
        if (job_is_active(job)) {
            active++;
            paused += job->state == JOB_PAUSED;
            g_free(key);
            continue;
        }
        g_hash_table_replace(moves, key,
                             GUINT_TO_POINTER(GPOINTER_TO_UINT(n) + 1));
        if (job->state == JOB_DONE) {
            if (job->t_stop > 0 && job->t_resume > job->t_stop) {
                sw_sum += job->t_resume - job->t_stop;
                sw_n++;
            }
            dur_sum += job->t_end - job->t_start;
            dur_n++;
            requests += MAX(job->postcopy_requests, 0);
            faults += MAX(job->pc.remote_faults, 0);
        }
    }
    help(o, "postpack_moves_total", "counter",
         "Moves that ended since the daemon started, by mode and outcome");
    g_autoptr(GList) keys = g_hash_table_get_keys(moves);
    keys = g_list_sort(keys, (GCompareFunc)strcmp);
    for (GList *k = keys; k; k = k->next) {
        g_string_append_printf(o, "postpack_moves_total{%s} %u\n",
                               (char *)k->data, GPOINTER_TO_UINT(
                                   g_hash_table_lookup(moves, k->data)));
    }
    help(o, "postpack_moves_in_flight", "gauge", "Moves running now");
    g_string_append_printf(o, "postpack_moves_in_flight %u\n", active);
    help(o, "postpack_moves_paused", "gauge",
         "Post-copy moves paused now, waiting for a recovery");
    g_string_append_printf(o, "postpack_moves_paused %u\n", paused);
    help(o, "postpack_postcopy_pauses_total", "counter",
         "Post-copy channel breaks (and requested pauses) of this run");
    g_string_append_printf(o, "postpack_postcopy_pauses_total %" G_GINT64_FORMAT
                           "\n", pauses);
    help(o, "postpack_postcopy_recoveries_total", "counter",
         "Paused post-copy moves resumed on a new channel");
    g_string_append_printf(o, "postpack_postcopy_recoveries_total %"
                           G_GINT64_FORMAT "\n", recoveries);
    help(o, "postpack_move_switchover_seconds", "summary",
         "From the source's stop to the destination's resume, moves done");
    g_string_append_printf(o, "postpack_move_switchover_seconds_sum %.17g\n"
                           "postpack_move_switchover_seconds_count %u\n",
                           sw_sum, sw_n);
    help(o, "postpack_move_duration_seconds", "summary",
         "From the start of a move to its end, moves done");
    g_string_append_printf(o, "postpack_move_duration_seconds_sum %.17g\n"
                           "postpack_move_duration_seconds_count %u\n",
                           dur_sum, dur_n);
    help(o, "postpack_postcopy_page_requests_total", "counter",
         "Page requests the destinations sent during post-copy, moves done");
    g_string_append_printf(o, "postpack_postcopy_page_requests_total %"
                           G_GINT64_FORMAT "\n", requests);
    help(o, "postpack_postcopy_remote_faults_total", "counter",
         "Guest faults on pages still remote (our QEMU), moves done");
    g_string_append_printf(o, "postpack_postcopy_remote_faults_total %"
                           G_GINT64_FORMAT "\n", faults);
    return g_string_free(o, FALSE);
}

static void on_metrics(SoupServer *server, SoupServerMessage *msg,
                       const char *path, GHashTable *query, gpointer opaque)
{
    PpDaemon *d = opaque;
    char *text;

    if (strcmp(soup_server_message_get_method(msg), SOUP_METHOD_GET) != 0 &&
        strcmp(soup_server_message_get_method(msg), SOUP_METHOD_HEAD) != 0) {
        soup_server_message_set_status(msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
                                       NULL);
        return;
    }
    text = pp_metrics_text(d);
    soup_server_message_set_response(msg, "text/plain; version=0.0.4",
                                     SOUP_MEMORY_TAKE, text, strlen(text));
    soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
}

bool pp_metrics_listen(PpDaemon *d, GError **errp)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GSocketAddress) sa = NULL;
    g_autofree char *host = NULL;
    guint16 port = 0;
    g_autoptr(GNetworkAddress) na = NULL;

    if (!d->cfg->metrics) {
        return true;
    }
    na = G_NETWORK_ADDRESS(g_network_address_parse(d->cfg->metrics, 0,
                                                   &err));
    if (!na || !g_network_address_get_port(na)) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "metrics = '%s': expected ADDRESS:PORT", d->cfg->metrics);
        return false;
    }
    host = g_strdup(g_network_address_get_hostname(na));
    port = g_network_address_get_port(na);
    g_autoptr(GInetAddress) ia = g_inet_address_new_from_string(host);
    if (!ia) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "metrics = '%s': '%s' is not an IP address",
                    d->cfg->metrics, host);
        return false;
    }
    sa = g_inet_socket_address_new(ia, port);
    d->metrics = soup_server_new(NULL, NULL);
    soup_server_add_handler(d->metrics, "/metrics", on_metrics, d, NULL);
    if (!soup_server_listen(d->metrics, sa, 0, &err)) {
        g_set_error(errp, PP_ERROR, PP_ERROR_IO,
                    "cannot serve metrics on %s: %s", d->cfg->metrics,
                    err->message);
        return false;
    }
    return true;
}

void pp_metrics_close(PpDaemon *d)
{
    if (d->metrics) {
        soup_server_disconnect(d->metrics);
        g_clear_object(&d->metrics);
    }
}
