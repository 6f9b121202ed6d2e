/*
 * consolidator: the postpack consolidation manager's command line.
 *
 *   consolidator run -c FILE [--daemon]      the daemon, in the foreground
 *   consolidator status|hosts|vms|jobs|plan  ask a running daemon
 *   consolidator migrate VM HOST [--mode=M] [--wait]
 *   consolidator cancel JOB
 *   consolidator stop [--vms]
 *   consolidator history [--since=S] [--vm=NAME]
 *   consolidator export --csv [--since=S]
 *   consolidator policies                     the policy names
 *   consolidator simulate --trace DIR ...     the trace-driven simulator
 *
 * Queries reach the daemon over its control socket (-c FILE finds it in
 * the configuration, --socket names it); history and export read the
 * database directly (-c FILE or --db), so they work after the daemon
 * stopped.  --json prints the daemon's JSON.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "cli.h"
#include "config.h"
#include "daemon.h"
#include "pp-error.h"
#include "ppjson.h"
#include "store.h"
#include "unixsock.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char *opt_config;
static char *opt_socket;
static char *opt_db;
static gboolean opt_json;
static gboolean opt_daemon;
static gboolean opt_csv;
static gboolean opt_wait;
static char *opt_mode;
static double opt_since = 600;
static char *opt_vm;

static GOptionEntry common_entries[] = {
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &opt_config,
      "configuration file (finds the socket and database)", "FILE" },
    { "socket", 0, 0, G_OPTION_ARG_FILENAME, &opt_socket,
      "the daemon's control socket", "PATH" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json, "print JSON", NULL },
    { NULL }
};

static GOptionEntry run_entries[] = {
    { "daemon", 'd', 0, G_OPTION_ARG_NONE, &opt_daemon,
      "detach once started (a failed start is reported here, exit 1); "
      "events then go to the database only", NULL },
    { NULL }
};

static GOptionEntry migrate_entries[] = {
    { "mode", 0, 0, G_OPTION_ARG_STRING, &opt_mode,
      "precopy, postcopy or postcopy-after=SECONDS (default: the "
      "configuration's)", "MODE" },
    { "wait", 'w', 0, G_OPTION_ARG_NONE, &opt_wait,
      "wait until the move ends; exit status 0 only if it is done", NULL },
    { NULL }
};

static gboolean opt_stop_vms;

static GOptionEntry stop_entries[] = {
    { "vms", 0, 0, G_OPTION_ARG_NONE, &opt_stop_vms,
      "stop the VMs too, and remove what the driver set up (local driver)",
      NULL },
    { NULL }
};

static GOptionEntry db_entries[] = {
    { "db", 0, 0, G_OPTION_ARG_FILENAME, &opt_db,
      "database file (default: from -c FILE)", "PATH" },
    { "since", 0, 0, G_OPTION_ARG_DOUBLE, &opt_since,
      "only the last S seconds (default 600; 0: everything)", "S" },
    { "vm", 0, 0, G_OPTION_ARG_STRING, &opt_vm, "only this VM", "NAME" },
    { "csv", 0, 0, G_OPTION_ARG_NONE, &opt_csv,
      "CSV output (export)", NULL },
    { NULL }
};

typedef struct Command {
    const char *name;
    const char *args;
    const char *summary;
    const char *examples;
} Command;

static const Command commands[] = {
    { "run", "", "run the daemon (foreground unless --daemon)",
      "  consolidator run -c /etc/postpack/cluster.ini\n" },
    { "status", "", "daemon status and moves in flight",
      "  consolidator status -c cluster.ini\n" },
    { "hosts", "", "hosts with CPU and their VMs",
      "  consolidator hosts -c cluster.ini --json\n" },
    { "vms", "", "VMs with host, state and CPU",
      "  consolidator vms -c cluster.ini\n" },
    { "jobs", "", "migration jobs of this run",
      "  consolidator jobs -c cluster.ini\n" },
    { "plan", "", "what the policy would do now (dry run)",
      "  consolidator plan -c cluster.ini\n" },
    { "migrate", "VM HOST", "move a VM to a host",
      "  consolidator migrate vm0 pm1 -c cluster.ini --mode=postcopy --wait\n"
      "  consolidator migrate vm1 pm0 --socket /run/pp.sock "
      "--mode=postcopy-after=5\n" },
    { "cancel", "JOB", "cancel a move that has not switched hosts yet",
      "  consolidator cancel 3 -c cluster.ini\n" },
    { "pause", "JOB", "pause a post-copy move (close its channel; both "
      "QEMUs wait)",
      "  consolidator pause 3 -c cluster.ini\n" },
    { "recover", "JOB", "resume a paused post-copy move on a new channel",
      "  consolidator recover 3 -c cluster.ini\n" },
    { "power", "HOST on|off", "suspend an empty host or wake one",
      "  consolidator power pm1 off -c cluster.ini\n"
      "  consolidator power pm1 on -c cluster.ini\n" },
    { "stop", "", "stop the daemon; its VMs keep running (--vms: them too)",
      "  consolidator stop -c cluster.ini\n"
      "  consolidator stop --vms -c cluster.ini\n" },
    { "history", "", "recent events from the database",
      "  consolidator history -c cluster.ini --since=3600 --vm=vm0\n" },
    { "export", "", "samples and events as CSV",
      "  consolidator export --csv --db state/postpack.db --since=0 > "
      "timeline.csv\n" },
    { "policies", "", "the relocation policies plan, run and simulate know",
      "  consolidator policies\n" },
    { "simulate", "", "simulate a data centre over CPU traces "
      "('simulate --help')",
      "  consolidator simulate --trace traces/planetlab/20110303 "
      "--policy lr-mmt\n" },
    { NULL }
};

static int usage(FILE *f)
{
    fprintf(f, "Usage: consolidator COMMAND [OPTION...]\n\n"
            "postpack's VM consolidation manager: samples VMs and hosts, "
            "runs a relocation\npolicy and moves VMs with pre-copy or "
            "post-copy live migration.\n\nCommands:\n");
    for (const Command *c = commands; c->name; c++) {
        g_autofree char *n = g_strdup_printf("%s %s", c->name, c->args);
        fprintf(f, "  %-16s %s\n", n, c->summary);
    }
    fprintf(f, "\nExamples:\n"
            "  consolidator run -c cluster.ini\n"
            "  consolidator vms -c cluster.ini\n"
            "  consolidator migrate vm0 pm1 -c cluster.ini --mode=postcopy "
            "--wait\n"
            "  consolidator export --csv -c cluster.ini --since=0\n\n"
            "'consolidator COMMAND --help' describes a command's options.\n");
    return f == stderr ? 2 : 0;
}

static void die(const char *fmt, ...) G_GNUC_PRINTF(1, 2) G_GNUC_NORETURN;
static void die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("consolidator: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static PpConfig *load_config(void)
{
    g_autoptr(GError) err = NULL;
    PpConfig *c = pp_config_load(opt_config, &err);

    if (!c) {
        die("%s", err->message);
    }
    return c;
}

/* One request, one reply over the control socket; returns "return". */
static json_object *request(const char *cmd, json_object *args)
{
    g_autofree char *path = NULL;
    g_autoptr(GError) cerr = NULL;
    g_autoptr(json_object) req = json_object_new_object();
    g_autoptr(GString) in = g_string_new(NULL);
    char buf[4096];
    int fd;

    g_autofree char *query_path = NULL;
    bool query = pp_control_is_query(cmd);

    if (opt_socket) {
        path = g_strdup(opt_socket);
    } else if (opt_config) {
        g_autoptr(PpConfig) c = load_config();
        path = g_strdup(c->socket);
        query_path = g_strdup(c->query_socket);
    } else {
        die("say which daemon: -c FILE or --socket PATH");
    }
    fd = pp_unix_connect(path, "the daemon's control socket", &cerr);
    if (fd < 0 && query && query_path && errno == EACCES) {
        /* not allowed to control: a query may still go to the read-only
         * socket */
        g_clear_error(&cerr);
        fd = pp_unix_connect(query_path, "the daemon's query socket", &cerr);
    }
    if (fd < 0) {
        die("%s (is 'consolidator run' running?)", cerr->message);
    }
    json_object_object_add(req, "command", json_object_new_string(cmd));
    if (args) {
        json_object_object_add(req, "arguments", args);
    }
    g_autofree char *line = g_strdup_printf(
        "%s\n", json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN));
    if (!pp_send_all(fd, line, strlen(line))) {
        die("cannot send to the daemon: %s", g_strerror(errno));
    }
    while (!memchr(in->str, '\n', in->len)) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0) {
            die("the daemon closed the connection without a reply");
        }
        g_string_append_len(in, buf, n);
    }
    close(fd);
    g_autoptr(json_object) rep = json_tokener_parse(in->str);
    json_object *ret, *err;
    if (!rep) {
        die("malformed reply from the daemon");
    }
    if (json_object_object_get_ex(rep, "error", &err)) {
        die("%s", json_object_is_type(err, json_type_string) ?
            json_object_get_string(err) : "malformed error from the daemon");
    }
    if (!json_object_object_get_ex(rep, "return", &ret)) {
        die("malformed reply from the daemon");
    }
    return json_object_get(ret);
}

/* For display: a scalar member as text, "-" when absent, null or not a
 * scalar. */
static const char *jstr(json_object *o, const char *k)
{
    json_object *v;

    if (!json_object_object_get_ex(o, k, &v)) {
        return "-";
    }
    switch (json_object_get_type(v)) {
    case json_type_string:
    case json_type_int:
    case json_type_double:
    case json_type_boolean:
        return json_object_get_string(v);
    default:
        return "-";
    }
}

static double jnum(json_object *o, const char *k)
{
    double v = NAN;

    return pp_json_get_num(o, k, &v, NULL) ? v : NAN;
}

/* An array member (@k), or @o itself when @k is NULL; NULL when it is
 * not an array (jlen() then counts 0). */
static json_object *jarr(json_object *o, const char *k)
{
    json_object *v = NULL;

    return k ? (pp_json_get_arr(o, k, &v, NULL) ? v : NULL) :
           (json_object_is_type(o, json_type_array) ? o : NULL);
}

static size_t jlen(json_object *a)
{
    return a ? json_object_array_length(a) : 0;
}

static void print_json(json_object *o)
{
    printf("%s\n", json_object_to_json_string_ext(
               o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
               JSON_C_TO_STRING_NOSLASHESCAPE));
}

static void print_job(json_object *j)
{
    double p50 = jnum(j, "fault-latency-p50-us");
    char lat[32] = "-";

    /* Our QEMU's fault latency, when the destination reported it. */
    if (!isnan(p50)) {
        snprintf(lat, sizeof(lat), "%.2f ms", p50 / 1000.0);
    }
    printf("%-4s %-10s %-6s -> %-6s %-18s %-10s %8.0f ms %8.1f MiB %6.0f "
           "req p50 %-8s  %s\n", jstr(j, "id"), jstr(j, "vm"), jstr(j, "from"),
           jstr(j, "to"), jstr(j, "mode"), jstr(j, "state"),
           jnum(j, "switchover-ms"), jnum(j, "bytes") / 1048576.0,
           jnum(j, "postcopy-requests"), lat,
           strcmp(jstr(j, "error"), "-") ? jstr(j, "error") :
           jstr(j, "reason"));
}

static int cmd_query(const char *cmd)
{
    g_autoptr(json_object) r = request(cmd, NULL);

    if (opt_json) {
        print_json(r);
        return 0;
    }
    if (strcmp(cmd, "status") == 0) {
        printf("instance %s, up %.0f s, driver %s, policy %s, %s moves, "
               "autopilot %s\n%s hosts, %s VMs, database %s\n",
               jstr(r, "instance"), jnum(r, "uptime"), jstr(r, "driver"),
               jstr(r, "policy"), jstr(r, "mode"),
               jstr(r, "autopilot"), jstr(r, "hosts"), jstr(r, "vms"),
               jstr(r, "database"));
        json_object *a = jarr(r, "active-jobs");
        for (size_t i = 0; i < jlen(a); i++) {
            print_job(json_object_array_get_idx(a, i));
        }
    } else if (strcmp(cmd, "hosts") == 0) {
        printf("%-12s %-8s %-10s %6s  %-12s %s\n", "HOST", "WHERE", "POWER",
               "CPU%", "ADDRESS", "VMS");
        for (size_t i = 0; i < jlen(jarr(r, NULL)); i++) {
            json_object *h = json_object_array_get_idx(r, i);
            json_object *v = jarr(h, "vms");
            g_autoptr(GString) names = g_string_new(NULL);
            for (size_t k = 0; k < jlen(v); k++) {
                json_object *n = json_object_array_get_idx(v, k);
                g_string_append_printf(names, "%s%s", k ? "," : "",
                    json_object_is_type(n, json_type_string) ?
                    json_object_get_string(n) : "?");
            }
            printf("%-12s %-8s %-10s %6.1f  %-12s %s\n", jstr(h, "name"),
                   jstr(h, "where"), jstr(h, "power"), jnum(h, "cpu"),
                   jstr(h, "address"), names->str);
        }
    } else if (strcmp(cmd, "vms") == 0) {
        printf("%-12s %-8s %-10s %6s %8s %8s %s\n", "VM", "HOST", "STATE",
               "CPU%", "QEMU%", "MEM-MIB", "JOB");
        for (size_t i = 0; i < jlen(jarr(r, NULL)); i++) {
            json_object *v = json_object_array_get_idx(r, i);
            printf("%-12s %-8s %-10s %6.1f %8.1f %8s %s\n", jstr(v, "name"),
                   jstr(v, "host"), jstr(v, "state"), jnum(v, "cpu"),
                   jnum(v, "process-cpu"), jstr(v, "memory-mib"),
                   jstr(v, "job"));
        }
    } else if (strcmp(cmd, "jobs") == 0) {
        for (size_t i = 0; i < jlen(jarr(r, NULL)); i++) {
            print_job(json_object_array_get_idx(r, i));
        }
    } else if (strcmp(cmd, "plan") == 0) {
        json_object *m = jarr(r, "moves"), *n = jarr(r, "notes");
        if (jlen(m) == 0) {
            printf("no moves\n");
        }
        for (size_t i = 0; i < jlen(m); i++) {
            json_object *x = json_object_array_get_idx(m, i);
            const char *method = jstr(x, "method");
            printf("move %s %s -> %s%s%s%s: %s\n", jstr(x, "vm"),
                   jstr(x, "from"), jstr(x, "to"),
                   strcmp(method, "default") && strcmp(method, "-") ?
                   " (" : "", strcmp(method, "default") &&
                   strcmp(method, "-") ? method : "",
                   strcmp(method, "default") && strcmp(method, "-") ?
                   ")" : "", jstr(x, "reason"));
        }
        json_object *pw = jarr(r, "power");
        for (size_t i = 0; i < jlen(pw); i++) {
            json_object *x = json_object_array_get_idx(pw, i);
            printf("power %s %s: %s\n", jstr(x, "action"), jstr(x, "host"),
                   jstr(x, "reason"));
        }
        for (size_t i = 0; i < jlen(n); i++) {
            json_object *x = json_object_array_get_idx(n, i);
            printf("note: %s\n", json_object_is_type(x, json_type_string) ?
                   json_object_get_string(x) : "?");
        }
    } else {
        printf("ok\n");
    }
    return 0;
}

static int cmd_migrate(int argc, char **argv)
{
    json_object *args = json_object_new_object();

    if (argc != 3) {
        json_object_put(args);
        die("usage: consolidator migrate VM HOST [--mode=MODE] [--wait]");
    }
    json_object_object_add(args, "vm", json_object_new_string(argv[1]));
    json_object_object_add(args, "host", json_object_new_string(argv[2]));
    if (opt_mode) {
        json_object_object_add(args, "mode", json_object_new_string(opt_mode));
    }
    g_autoptr(json_object) job = request("migrate", args);
    gint64 id = (gint64)jnum(job, "id");
    if (!opt_wait) {
        opt_json ? print_json(job) : print_job(job);
        return 0;
    }
    for (;;) {
        g_autoptr(json_object) jobs = request("jobs", NULL);
        for (size_t i = 0; i < json_object_array_length(jobs); i++) {
            json_object *j = json_object_array_get_idx(jobs, i);
            const char *st = jstr(j, "state");
            if ((gint64)jnum(j, "id") != id ||
                (strcmp(st, "done") && strcmp(st, "failed") &&
                 strcmp(st, "broken") && strcmp(st, "cancelled"))) {
                continue;
            }
            opt_json ? print_json(j) : print_job(j);
            return strcmp(st, "done") == 0 ? 0 : 1;
        }
        g_usleep(200 * 1000);
    }
}

/* cancel, pause, recover: a command on one job of this run. */
static int cmd_job(const char *name, int argc, char **argv)
{
    json_object *args = json_object_new_object();
    char *end;
    gint64 id;

    if (argc != 2 || (id = g_ascii_strtoll(argv[1], &end, 10)) <= 0 || *end) {
        json_object_put(args);
        die("usage: consolidator %s JOB (a job number from 'jobs')", name);
    }
    json_object_object_add(args, "job", json_object_new_int64(id));
    g_autoptr(json_object) job = request(name, args);
    opt_json ? print_json(job) : print_job(job);
    return 0;
}

static PpStore *open_db(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *path = NULL;
    PpStore *s;

    if (opt_db) {
        path = g_strdup(opt_db);
    } else if (opt_config) {
        g_autoptr(PpConfig) c = load_config();
        path = g_strdup(c->database);
    } else {
        die("say which database: -c FILE or --db PATH");
    }
    s = pp_store_open_readonly(path, &err);
    if (!s) {
        die("%s", err->message);
    }
    return s;
}

static bool print_row(int n, char **names, char **values, gpointer opaque)
{
    bool csv = GPOINTER_TO_INT(opaque);

    for (int i = 0; i < n; i++) {
        const char *v = values[i] ? values[i] : "";
        if (csv) {
            if (strpbrk(v, ",\"\n")) {
                g_autoptr(GString) q = g_string_new(v);
                g_string_replace(q, "\"", "\"\"", 0);
                printf("%s\"%s\"", i ? "," : "", q->str);
            } else {
                printf("%s%s", i ? "," : "", v);
            }
        } else {
            printf(i ? "  %s" : "%s", v);
        }
    }
    putchar('\n');
    return true;
}

static bool print_json_row(int n, char **names, char **values,
                           gpointer opaque)
{
    json_object *a = opaque, *o = json_object_new_object();

    for (int i = 0; i < n; i++) {
        json_object_object_add(o, names[i], values[i] ?
                               json_object_new_string(values[i]) : NULL);
    }
    json_object_array_add(a, o);
    return true;
}

static char *since_clause(void)
{
    return opt_since > 0 ?
           g_strdup_printf("t >= strftime('%%s','now') - %.3f", opt_since) :
           g_strdup("1");
}

static int cmd_history(void)
{
    g_autoptr(PpStore) s = open_db();
    g_autoptr(GError) err = NULL;
    g_autofree char *since = since_clause();
    g_autofree char *vm = opt_vm ? g_strescape(opt_vm, NULL) : NULL;
    g_autofree char *sql = NULL;
    g_autoptr(GString) vmq = g_string_new(NULL);

    if (opt_vm) {
        /* Quote for SQL: double the single quotes. */
        g_autoptr(GString) q = g_string_new(opt_vm);
        g_string_replace(q, "'", "''", 0);
        g_string_printf(vmq, " AND vm = '%s'", q->str);
    }
    sql = g_strdup_printf(
        "SELECT strftime('%%Y-%%m-%%d %%H:%%M:%%f', t, 'unixepoch', "
        "'localtime') AS time, kind, ifnull(vm, '-') AS vm, detail "
        "FROM events WHERE %s%s ORDER BY t", since, vmq->str);
    if (opt_json) {
        g_autoptr(json_object) a = json_object_new_array();
        if (!pp_store_query(s, sql, print_json_row, a, &err)) {
            die("%s", err->message);
        }
        print_json(a);
        return 0;
    }
    if (!pp_store_query(s, sql, print_row, GINT_TO_POINTER(0), &err)) {
        die("%s", err->message);
    }
    return 0;
}

static int cmd_export(void)
{
    g_autoptr(PpStore) s = open_db();
    g_autoptr(GError) err = NULL;
    g_autofree char *since = since_clause();
    g_autofree char *sql = NULL;

    if (!opt_csv) {
        die("export writes CSV: say --csv");
    }
    printf("kind,t,name,host,cpu,proc_cpu,detail\n");
    sql = g_strdup_printf(
        "SELECT * FROM ("
        " SELECT 'host' AS kind, t, host AS name, host, cpu, '' AS proc_cpu,"
        "  '' AS detail FROM host_samples WHERE %s"
        " UNION ALL SELECT 'vm', t, vm, host, cpu, proc_cpu, ''"
        "  FROM vm_samples WHERE %s"
        " UNION ALL SELECT 'event:' || kind, t, ifnull(vm, ''), '', '', '',"
        "  detail FROM events WHERE %s) ORDER BY t, kind, name",
        since, since, since);
    if (!pp_store_query(s, sql, print_row, GINT_TO_POINTER(1), &err)) {
        die("%s", err->message);
    }
    return 0;
}

int main(int argc, char **argv)
{
    const Command *cmd = NULL;
    g_autoptr(GOptionContext) ctx = NULL;
    g_autoptr(GError) err = NULL;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        return usage(argc < 2 ? stderr : stdout);
    }
    for (const Command *c = commands; c->name; c++) {
        if (strcmp(c->name, argv[1]) == 0) {
            cmd = c;
        }
    }
    if (!cmd) {
        fprintf(stderr, "consolidator: unknown command '%s'\n\n", argv[1]);
        return usage(stderr);
    }
    if (strcmp(cmd->name, "simulate") == 0) {
        argv[1] = g_strdup_printf("%s simulate", argv[0]);
        return pp_cli_simulate(argc - 1, argv + 1);
    }
    g_autofree char *param = g_strdup_printf("%s%s%s - %s", cmd->name,
                                             *cmd->args ? " " : "",
                                             cmd->args, cmd->summary);
    ctx = g_option_context_new(param);
    g_autofree char *desc = g_strdup_printf("Examples:\n%s", cmd->examples);
    g_option_context_set_description(ctx, desc);
    g_option_context_add_main_entries(ctx, common_entries, NULL);
    if (strcmp(cmd->name, "run") == 0) {
        g_option_context_add_main_entries(ctx, run_entries, NULL);
    } else if (strcmp(cmd->name, "migrate") == 0) {
        g_option_context_add_main_entries(ctx, migrate_entries, NULL);
    } else if (strcmp(cmd->name, "stop") == 0) {
        g_option_context_add_main_entries(ctx, stop_entries, NULL);
    } else if (strcmp(cmd->name, "history") == 0 ||
               strcmp(cmd->name, "export") == 0) {
        g_option_context_add_main_entries(ctx, db_entries, NULL);
    }
    /* Parse "consolidator CMD ..." as if CMD were the program. */
    argv[1] = argv[0];
    argc--;
    argv++;
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        fprintf(stderr, "consolidator %s: %s\n", cmd->name, err->message);
        return 2;
    }
    bool job_cmd = strcmp(cmd->name, "cancel") == 0 ||
                   strcmp(cmd->name, "pause") == 0 ||
                   strcmp(cmd->name, "recover") == 0;
    if (strcmp(cmd->name, "migrate") != 0 && strcmp(cmd->name, "power") &&
        !job_cmd && argc > 1) {
        fprintf(stderr, "consolidator %s: unexpected argument '%s'\n",
                cmd->name, argv[1]);
        return 2;
    }
    if (strcmp(cmd->name, "run") == 0) {
        if (!opt_config) {
            die("run needs -c FILE");
        }
        return pp_daemon_run(opt_config, opt_daemon);
    }
    if (strcmp(cmd->name, "migrate") == 0) {
        return cmd_migrate(argc, argv);
    }
    if (job_cmd) {
        return cmd_job(cmd->name, argc, argv);
    }
    if (strcmp(cmd->name, "power") == 0) {
        if (argc != 3 || (strcmp(argv[2], "on") && strcmp(argv[2], "off"))) {
            die("usage: consolidator power HOST on|off");
        }
        json_object *args = json_object_new_object();
        json_object_object_add(args, "host", json_object_new_string(argv[1]));
        json_object_object_add(args, "action",
                               json_object_new_string(argv[2]));
        g_autoptr(json_object) r = request("power", args);
        if (opt_json) {
            print_json(r);
        } else {
            printf("%s: %s\n", jstr(r, "name"), jstr(r, "power"));
        }
        return 0;
    }
    if (strcmp(cmd->name, "policies") == 0) {
        return pp_cli_policies(opt_json);
    }
    if (strcmp(cmd->name, "history") == 0) {
        return cmd_history();
    }
    if (strcmp(cmd->name, "export") == 0) {
        return cmd_export();
    }
    if (strcmp(cmd->name, "stop") == 0 && opt_stop_vms) {
        json_object *args = json_object_new_object();
        json_object_object_add(args, "vms", json_object_new_boolean(TRUE));
        g_autoptr(json_object) r = request("stop", args);
        if (opt_json) {
            print_json(r);
        } else {
            printf("ok\n");
        }
        return 0;
    }
    return cmd_query(cmd->name);
}
