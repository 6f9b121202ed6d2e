/*
 * consolidator simulate: the trace-driven simulator on the command line,
 * and consolidator policies: the policy names plan and simulate accept.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "cli.h"
#include "policy.h"
#include "pp-error.h"
#include "sim.h"
#include "trace.h"

#include <errno.h>
#include <gio/gio.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int pp_cli_policies(bool json)
{
    if (json) {
        printf("[");
        for (const PpPolicyOps *const *p = pp_policies; *p; p++) {
            g_autofree char *d = g_strescape((*p)->description, NULL);
            printf("%s{\"name\": \"%s\", \"description\": \"%s\"}",
                   p == pp_policies ? "" : ", ", (*p)->name, d);
        }
        printf("]\n");
        return 0;
    }
    for (const PpPolicyOps *const *p = pp_policies; *p; p++) {
        printf("%-10s %s\n", (*p)->name, (*p)->description);
    }
    return 0;
}

static char *opt_trace;
static int opt_synthetic;
static int opt_samples;
static double opt_step = 300;
static gint64 opt_seed = 1;
static double opt_mean = 12;
static gint64 opt_shuffle = -1;
static char *opt_start;
static int opt_hosts = 800;
static char *opt_policy;
static char **opt_set;
static char *opt_model;
static char **opt_mig;
static char *opt_power;
static double opt_wake_delay = 30;
static double opt_suspended_watts = 5;
static char *opt_csv;
static char *opt_plot;
static gboolean opt_json;
static gboolean opt_list;

static GOptionEntry entries[] = {
    { "trace", 't', 0, G_OPTION_ARG_FILENAME, &opt_trace,
      "a PlanetLab directory: one file per VM, one CPU %% per line",
      "DIR" },
    { "synthetic", 0, 0, G_OPTION_ARG_INT, &opt_synthetic,
      "instead, a synthetic trace of N VMs", "N" },
    { "samples", 0, 0, G_OPTION_ARG_INT, &opt_samples,
      "samples per VM (default: the files' length; synthetic 288)", "N" },
    { "step", 0, 0, G_OPTION_ARG_DOUBLE, &opt_step,
      "seconds per sample and per decision (default 300)", "S" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &opt_seed,
      "synthetic trace seed (default 1)", "N" },
    { "shuffle", 0, 0, G_OPTION_ARG_INT64, &opt_shuffle,
      "VMs in a pseudo-random order from SEED instead of by file name "
      "(VM types go by position, so the order matters)", "SEED" },
    { "start", 0, 0, G_OPTION_ARG_STRING, &opt_start,
      "initial placement: full (each VM asks its whole size, the host "
      "whose power rises least: CloudSim's; default for --trace) or "
      "demand (first sample, largest first, hosts filled to 70 %%: "
      "default for --synthetic)", "full|demand" },
    { "mean", 0, 0, G_OPTION_ARG_DOUBLE, &opt_mean,
      "synthetic mean CPU %% per VM (default 12)", "PCT" },
    { "hosts", 0, 0, G_OPTION_ARG_INT, &opt_hosts,
      "hosts (default 800, half ML110 G4 and half G5)", "N" },
    { "policy", 'p', 0, G_OPTION_ARG_STRING, &opt_policy,
      "policies to run, comma-separated, each with its own settings "
      "after colons (default lr-mmt; 'consolidator policies' lists them)",
      "NAME[:KEY=VALUE...][,...]" },
    { "set", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opt_set,
      "a setting for every policy run, as in the [policy] section "
      "(repeatable)",
      "KEY=VALUE" },
    { "model", 'm', 0, G_OPTION_ARG_STRING, &opt_model,
      "migration model: cloudsim (default), precopy, postcopy, or plan "
      "(each move by the method its plan gives, post-copy by default)",
      "MODEL" },
    { "mig", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opt_mig,
      "a migration model parameter (repeatable; docs/simulator.md): "
      "bandwidth_share, downtime, max_rounds, dirty_per_core, working_set, "
      "precopy_slowdown, switch_time, postcopy_first_s, "
      "postcopy_first_loss, postcopy_loss, source_cpu", "KEY=VALUE" },
    { "power", 0, 0, G_OPTION_ARG_STRING, &opt_power,
      "host power: cloudsim (a host without load is off at once, 0 W; the "
      "default) or actions (as the plans' power actions say: awake hosts "
      "draw idle power, suspended ones --suspended-watts, waking takes "
      "--wake-delay)", "cloudsim|actions" },
    { "wake-delay", 0, 0, G_OPTION_ARG_DOUBLE, &opt_wake_delay,
      "seconds a suspended host takes to wake (default 30)", "S" },
    { "suspended-watts", 0, 0, G_OPTION_ARG_DOUBLE, &opt_suspended_watts,
      "watts a suspended host draws (default 5)", "W" },
    { "csv", 0, 0, G_OPTION_ARG_FILENAME, &opt_csv,
      "per-interval rows (policy, time, active hosts, power, energy, ...)",
      "FILE" },
    { "plot", 0, 0, G_OPTION_ARG_FILENAME, &opt_plot,
      "energy against SLAV of the policies run, as a PNG (gnuplot)",
      "FILE" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json, "print JSON", NULL },
    { "list", 0, 0, G_OPTION_ARG_NONE, &opt_list,
      "list the policies and exit", NULL },
    { NULL }
};

static void print_header(void)
{
    printf("%-10s %9s %8s %7s %9s %9s %8s %9s %9s %8s %8s\n", "POLICY",
           "ENERGY", "SLATAH%", "PDM%", "SLAVe-5", "ESVe-3", "MIGR",
           "SHUTDOWNS", "DECIDEms", "RES-P50", "RES-P90");
}

static void print_row(const char *name, const PpSimResult *r)
{
    printf("%-10s %9.2f %8.2f %7.3f %9.2f %9.2f %8" G_GUINT64_FORMAT
           " %9" G_GUINT64_FORMAT " %9.2f %8.0f %8.0f\n", name, r->energy_kwh,
           r->slatah * 100, r->pdm * 100, r->slav * 1e5, r->esv * 1e3,
           r->migrations, r->shutdowns, r->decision_mean_ms, r->resolve_p50,
           r->resolve_p90);
}

static void print_json_row(const char *name, const PpSimResult *r, bool first)
{
    printf("%s{\"policy\": \"%s\", \"hosts\": %u, \"vms\": %u, "
           "\"energy-kwh\": %.4f, \"slatah\": %.6g, \"pdm\": %.6g, "
           "\"slav\": %.6g, \"esv\": %.6g, \"migrations\": %" G_GUINT64_FORMAT
           ", \"shutdowns\": %" G_GUINT64_FORMAT ", "
           "\"mean-before-shutdown-s\": %.1f, \"mean-migration-s\": %.2f, "
           "\"decisions\": %" G_GUINT64_FORMAT ", \"decision-mean-ms\": %.3f, "
           "\"decision-max-ms\": %.3f, \"overload-host-s\": %.1f, "
           "\"overloads\": %" G_GUINT64_FORMAT ", \"resolve-mean-s\": %.1f, "
           "\"resolve-p50-s\": %.1f, \"resolve-p90-s\": %.1f, "
           "\"resolve-max-s\": %.1f, \"ended-vms\": %" G_GUINT64_FORMAT
           ", \"refused-moves\": %" G_GUINT64_FORMAT ", \"precopies\": %"
           G_GUINT64_FORMAT ", \"postcopies\": %" G_GUINT64_FORMAT
           ", \"unconverged\": %" G_GUINT64_FORMAT ", \"moved-mb\": %.0f, "
           "\"wakes\": %" G_GUINT64_FORMAT ", \"suspends\": %"
           G_GUINT64_FORMAT ", \"unplanned-wakes\": %" G_GUINT64_FORMAT "}",
           first ? "" : ",\n ", name, r->nhosts, r->nvms, r->energy_kwh,
           r->slatah, r->pdm, r->slav, r->esv, r->migrations, r->shutdowns,
           r->mean_before_shutdown, r->mean_migration_time, r->decisions,
           r->decision_mean_ms, r->decision_max_ms, r->overload_host_seconds,
           r->overloads, r->resolve_mean, r->resolve_p50, r->resolve_p90,
           r->resolve_max, r->ended_vms, r->unplaced, r->precopies,
           r->postcopies, r->unconverged, r->moved_mb, r->wakes,
           r->suspends, r->unplanned_wakes);
}

static bool plot(const char *png, GPtrArray *names, GArray *results,
                 GError **errp)
{
    g_autofree char *dat = NULL;
    g_autoptr(GString) s = g_string_new(NULL);
    int fd = g_file_open_tmp("pp-sim-XXXXXX.dat", &dat, errp);

    if (fd < 0) {
        return false;
    }
    for (guint i = 0; i < names->len; i++) {
        const PpSimResult *r = &g_array_index(results, PpSimResult, i);
        g_string_append_printf(s, "%.6g %.4f \"%s\"\n", r->slav * 1e5,
                               r->energy_kwh, (char *)names->pdata[i]);
    }
    close(fd);
    if (!g_file_set_contents(dat, s->str, s->len, errp)) {
        return false;
    }
    g_autofree char *script = g_strdup_printf(
        "set terminal pngcairo size 800,560\n"
        "set output '%s'\n"
        "set xlabel 'SLAV (x 1e-5)'\nset ylabel 'energy (kWh)'\n"
        "set grid\nunset key\n"
        "plot '%s' using 1:2 with points pt 7 ps 1.4, "
        "'' using 1:2:3 with labels offset 1,0.8 left\n", png, dat);
    const char *argv[] = { "gnuplot", NULL };
    GSubprocess *p = g_subprocess_newv(argv, G_SUBPROCESS_FLAGS_STDIN_PIPE,
                                       errp);
    if (!p) {
        g_prefix_error(errp, "cannot run gnuplot (apt install gnuplot-nox): ");
        unlink(dat);
        return false;
    }
    bool ok = g_subprocess_communicate_utf8(p, script, NULL, NULL, NULL,
                                            errp) &&
              g_subprocess_wait_check(p, NULL, errp);
    g_object_unref(p);
    unlink(dat);
    return ok;
}

/* KEY=VALUE into [policy] of @kf; false (said on stderr) when it is not
 * one: an empty or malformed key would otherwise be dropped silently. */
static bool set_key(GKeyFile *kf, const char *kv, const char *where)
{
    const char *eq = strchr(kv, '=');
    g_autofree char *key = eq ? g_strstrip(g_strndup(kv, eq - kv)) : NULL;
    g_autofree char *value = eq ? g_strstrip(g_strdup(eq + 1)) : NULL;

    if (!key || !*key || strpbrk(key, "[]=# \t") ||
        !g_utf8_validate(key, -1, NULL)) {
        fprintf(stderr, "consolidator simulate: %s: '%s' is not "
                "KEY=VALUE\n", where, kv);
        return false;
    }
    g_key_file_set_value(kf, "policy", key, value);
    return true;
}

int pp_cli_simulate(int argc, char **argv)
{
    g_autoptr(GOptionContext) ctx = g_option_context_new(
        "- simulate a data centre over CPU traces with relocation policies");
    g_autoptr(GError) err = NULL;
    g_autoptr(PpTrace) tr = NULL;
    g_autoptr(GKeyFile) kf = g_key_file_new();
    PpSimConfig cfg;

    g_option_context_set_description(ctx,
        "Examples:\n"
        "  consolidator simulate --trace traces/planetlab/20110303 "
        "--policy thr-mmt:threshold=0.8\n"
        "  consolidator simulate --trace DIR --policy thr-mmt,iqr-mmt,"
        "lr-mmt --plot sweep.png\n"
        "  consolidator simulate --synthetic 100000 --hosts 10000 "
        "--samples 12 --policy lr-mmt\n");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        fprintf(stderr, "consolidator simulate: %s\n", err->message);
        return 2;
    }
    if (argc > 1) {
        fprintf(stderr, "consolidator simulate: unexpected argument '%s'\n",
                argv[1]);
        return 2;
    }
    if (opt_list) {
        return pp_cli_policies(opt_json);
    }
    if (!opt_trace == !opt_synthetic) {
        fprintf(stderr, "consolidator simulate: say which trace: --trace DIR "
                "or --synthetic N\n");
        return 2;
    }
    if (opt_hosts <= 0 || opt_samples < 0 || opt_synthetic < 0 ||
        !(opt_step > 0) || !(opt_mean >= 0 && opt_mean <= 100)) {
        fprintf(stderr, "consolidator simulate: --hosts, --samples, "
                "--synthetic, --step must be positive and --mean 0..100\n");
        return 2;
    }
    pp_sim_preset_literature(&cfg);
    cfg.nhosts = opt_hosts;
    cfg.start_by_demand = opt_synthetic > 0;
    if (opt_start) {
        if (strcmp(opt_start, "full") && strcmp(opt_start, "demand")) {
            fprintf(stderr, "consolidator simulate: --start '%s': expected "
                    "full or demand\n", opt_start);
            return 2;
        }
        cfg.start_by_demand = strcmp(opt_start, "demand") == 0;
    }
    static const struct {
        const char *name;
        PpMigModel model;
    } models[] = {
        { "cloudsim", PP_MIG_CLOUDSIM }, { "precopy", PP_MIG_PRECOPY },
        { "postcopy", PP_MIG_POSTCOPY }, { "plan", PP_MIG_BY_PLAN },
    };
    if (opt_model) {
        size_t i;
        for (i = 0; i < G_N_ELEMENTS(models); i++) {
            if (strcmp(opt_model, models[i].name) == 0) {
                cfg.model = models[i].model;
                break;
            }
        }
        if (i == G_N_ELEMENTS(models)) {
            fprintf(stderr, "consolidator simulate: unknown model '%s' "
                    "(known: cloudsim, precopy, postcopy, plan)\n",
                    opt_model);
            return 2;
        }
    }
    if (opt_power) {
        if (strcmp(opt_power, "cloudsim") && strcmp(opt_power, "actions")) {
            fprintf(stderr, "consolidator simulate: --power '%s': expected "
                    "cloudsim or actions\n", opt_power);
            return 2;
        }
        cfg.power_actions = strcmp(opt_power, "actions") == 0;
    }
    if (!(opt_wake_delay >= 0 && opt_wake_delay <= 86400) ||
        !(opt_suspended_watts >= 0 && opt_suspended_watts <= 1e4)) {
        fprintf(stderr, "consolidator simulate: --wake-delay 0..86400, "
                "--suspended-watts 0..10000\n");
        return 2;
    }
    cfg.wake_delay = opt_wake_delay;
    cfg.suspended_watts = opt_suspended_watts;
    static const struct {
        const char *key;
        size_t off;
        double min, max;
    } mig_keys[] = {
#define K(k, lo, hi) { #k, offsetof(PpMigParams, k), lo, hi }
        K(bandwidth_share, 0.01, 1), K(downtime, 0.001, 60),
        K(max_rounds, 1, 1000), K(dirty_per_core, 0, 1e5),
        K(working_set, 0, 1), K(precopy_slowdown, 0, 0.99),
        K(switch_time, 0, 60), K(postcopy_first_s, 0, 3600),
        K(postcopy_first_loss, 0, 0.99), K(postcopy_loss, 0, 0.99),
        K(source_cpu, 0, 1),
#undef K
    };
    for (char **m = opt_mig; m && *m; m++) {
        char *eq = strchr(*m, '='), *end;
        size_t i;
        for (i = 0; eq && i < G_N_ELEMENTS(mig_keys); i++) {
            if (strlen(mig_keys[i].key) == (size_t)(eq - *m) &&
                strncmp(mig_keys[i].key, *m, eq - *m) == 0) {
                break;
            }
        }
        double v = eq ? g_ascii_strtod(eq + 1, &end) : NAN;
        if (!eq || i == G_N_ELEMENTS(mig_keys) || end == eq + 1 || *end ||
            !(v >= mig_keys[i].min && v <= mig_keys[i].max)) {
            fprintf(stderr, "consolidator simulate: --mig '%s': expected "
                    "KEY=VALUE with a known key and a value in range\n", *m);
            return 2;
        }
        *(double *)((char *)&cfg.mig + mig_keys[i].off) = v;
    }
    if (opt_trace) {
        tr = pp_trace_load_planetlab(opt_trace, opt_samples, opt_step, &err);
    } else {
        tr = pp_trace_synthetic(opt_synthetic, opt_samples ? opt_samples :
                                288, opt_step, opt_mean, opt_seed);
    }
    if (!tr) {
        fprintf(stderr, "consolidator simulate: %s\n", err->message);
        return 1;
    }
    if (opt_shuffle >= 0) {
        pp_trace_shuffle(tr, opt_shuffle);
    }
    for (char **s = opt_set; s && *s; s++) {
        if (!set_key(kf, *s, "--set")) {
            return 2;
        }
    }

    g_auto(GStrv) names = g_strsplit(opt_policy ? opt_policy : "lr-mmt",
                                     ",", -1);
    g_autoptr(GPtrArray) ran = g_ptr_array_new();
    g_autoptr(GArray) results = g_array_new(FALSE, TRUE,
                                            sizeof(PpSimResult));
    FILE *csv = NULL;
    if (opt_csv && !(csv = fopen(opt_csv, "w"))) {
        fprintf(stderr, "consolidator simulate: %s: %s\n", opt_csv,
                g_strerror(errno));
        return 1;
    }
    if (!opt_json) {
        printf("%u VMs x %u samples of %.0f s, %u hosts, migration model "
               "%s\n",
               tr->nvms, tr->nsamples, tr->step, cfg.nhosts,
               opt_model ? opt_model : "cloudsim");
        print_header();
    } else {
        printf("[");
    }
    int rc = 0;
    for (char **n = names; *n; n++) {
        g_strstrip(*n);
        /* NAME[:KEY=VALUE...]: settings for this one */
        g_auto(GStrv) parts = g_strsplit(*n, ":", -1);
        g_autoptr(GKeyFile) pkf = g_key_file_new();
        g_autofree char *all = g_key_file_to_data(kf, NULL, NULL);
        if (!g_key_file_load_from_data(pkf, all, -1, G_KEY_FILE_NONE, &err)) {
            fprintf(stderr, "consolidator simulate: %s\n", err->message);
            rc = 1;
            break;
        }
        for (char **kv = parts + 1; *kv; kv++) {
            if (!set_key(pkf, *kv, *n)) {
                rc = 2;
                break;
            }
        }
        if (rc) {
            break;
        }
        const PpPolicyOps *ops = pp_policy_find(parts[0], &err);
        if (!ops) {
            fprintf(stderr, "consolidator simulate: %s\n", err->message);
            rc = 2;
            break;
        }
        void *state = pp_policy_create(ops, pkf, "policy", NULL, &err);
        if (!state) {
            fprintf(stderr, "consolidator simulate: policy %s: %s\n", *n,
                    err->message);
            rc = 2;
            break;
        }
        PpSimResult r;
        g_autofree char *tmp = NULL;
        FILE *rows = NULL;
        if (csv) {
            /* rows into a temporary file, then prefixed with the policy */
            int fd = g_file_open_tmp("pp-sim-XXXXXX.csv", &tmp, &err);
            rows = fd >= 0 ? fdopen(fd, "w+") : NULL;
            if (!rows) {
                fprintf(stderr, "consolidator simulate: a temporary file "
                        "for --csv: %s\n", err ? err->message :
                        g_strerror(errno));
                ops->destroy(state);
                rc = 1;
                break;
            }
        }
        cfg.csv = rows;
        bool ok = pp_sim_run(&cfg, tr, ops, state, &r, &err);
        ops->destroy(state);
        if (rows) {
            char line[512];
            rewind(rows);
            bool header = true;
            while (fgets(line, sizeof(line), rows)) {
                if (header) {
                    if (n == names) {
                        fprintf(csv, "policy,%s", line);
                    }
                    header = false;
                    continue;
                }
                fprintf(csv, "%s,%s", *n, line);
            }
            fclose(rows);
            unlink(tmp);
        }
        if (!ok) {
            fprintf(stderr, "consolidator simulate: %s\n", err->message);
            rc = 1;
            break;
        }
        if (opt_json) {
            print_json_row(*n, &r, ran->len == 0);
        } else {
            print_row(*n, &r);
        }
        fflush(stdout);
        g_ptr_array_add(ran, *n);
        g_array_append_val(results, r);
    }
    if (opt_json) {
        printf("]\n");
    }
    if (csv && fclose(csv) != 0) {
        fprintf(stderr, "consolidator simulate: %s: %s\n", opt_csv,
                g_strerror(errno));
        rc = rc ? rc : 1;
    }
    if (rc == 0 && opt_plot && !plot(opt_plot, ran, results, &err)) {
        fprintf(stderr, "consolidator simulate: %s\n", err->message);
        rc = 1;
    }
    return rc;
}
