/*
 * ppmig: boot a guest, migrate it once, and report what happened.
 *
 * The building block of the migration regression tests and of the demo:
 * starts a source QEMU running a guest workload, starts a destination with
 * -incoming defer, migrates with pre-copy, post-copy (switched right after
 * the start) or post-copy after some seconds of pre-copy, then checks that
 * the guest runs on the destination and, with --verify, that every page of
 * memverify's area arrived intact.
 *
 * Exit status: 0 migration completed (and verified), 1 the guest's memory
 * failed verification, 2 anything else failed (usage, QEMU, migration).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "guestlog.h"
#include "launcher.h"
#include "migqmp.h"
#include "pp-error.h"
#include "ppjson.h"
#include "qmp.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QMP_TIMEOUT_MS 10000

typedef enum {
    MODE_PRECOPY,
    MODE_POSTCOPY,          /* switch to post-copy right after the start */
    MODE_POSTCOPY_AFTER,    /* switch after opt_postcopy_after seconds */
    MODE_POSTCOPY_INSTANT,  /* our QEMU's x-postcopy-instant capability */
} MigMode;

/* Options. */
static char *opt_qemu;
static char *opt_kernel;
static char *opt_initrd;
static char **opt_firmware;
static char *opt_accel = "tcg";
static int opt_mem = 512;
static int opt_vcpus = 1;
static char *opt_workload;
static int opt_fill;
static char *opt_mode = "postcopy";
static char *opt_src_cpus;
static char *opt_dst_cpus;
static char *opt_run_dir;
static gboolean opt_verify;
static int opt_corrupt_page = -1;
static double opt_settle = 1.0;
static double opt_observe = 2.0;
static int opt_max_bandwidth;   /* MiB/s, 0: unlimited */
static int opt_downtime_ms;     /* 0: QEMU's default */
static int opt_timeout = 300;
static char *opt_src_netns;
static char *opt_dst_netns;
static char *opt_dst_addr;
static char *opt_src_addr;
static int opt_moves = 1;
static gboolean opt_forget_faults;
static gboolean opt_preempt;
static gboolean opt_hot_first;
static int opt_hot_track_ms;
static int opt_hot_sample_ms;   /* 0: QEMU's default */
static int opt_window;          /* 0: QEMU's default */
static gint64 opt_send_buffer;  /* bytes, 0: QEMU's default */
static gint64 opt_pacing_rate;  /* bytes/s, 0: QEMU's default */
static gint64 opt_max_postcopy_bw; /* bytes/s, 0: unlimited */
static gboolean opt_no_access_log;
static gboolean opt_no_collapse;
static gboolean opt_no_resume_pages;
static gboolean opt_count_faults;
static char *opt_hot_set_in;
static char *opt_hot_set_out;
static char *opt_dst_hot_set_out;
static gboolean opt_hot_set_binary;
static int opt_pause_after_ms = -1; /* -1: no post-copy recovery */
static char **opt_trace;            /* QEMU -trace patterns, both sides */
static gboolean opt_tls;            /* migrate over TLS (PSK credentials) */
static char *opt_net_tap;           /* "SRC[:DST]": tap devices, both sides */
static char *opt_mac;
static char *opt_guest_addr;
static gboolean opt_json;
static gboolean opt_quiet;

static GOptionEntry entries[] = {
    { "qemu", 0, 0, G_OPTION_ARG_FILENAME, &opt_qemu,
      "QEMU binary (default: build/qemu/qemu-system-x86_64)", "PATH" },
    { "kernel", 0, 0, G_OPTION_ARG_FILENAME, &opt_kernel,
      "guest kernel (default: build/guest/vmlinuz)", "PATH" },
    { "initrd", 0, 0, G_OPTION_ARG_FILENAME, &opt_initrd,
      "guest initrd (default: build/guest/initrd.img)", "PATH" },
    { "firmware", 'L', 0, G_OPTION_ARG_FILENAME_ARRAY, &opt_firmware,
      "firmware directory for QEMU's -L (repeatable; default: Debian's "
      "seabios and qemu-system-data directories)", "DIR" },
    { "accel", 0, 0, G_OPTION_ARG_STRING, &opt_accel,
      "accelerator: tcg or kvm (default tcg)", "ACCEL" },
    { "mem", 'm', 0, G_OPTION_ARG_INT, &opt_mem,
      "guest memory in MiB (default 512)", "MIB" },
    { "vcpus", 0, 0, G_OPTION_ARG_INT, &opt_vcpus,
      "guest vCPUs (default 1)", "N" },
    { "workload", 'w', 0, G_OPTION_ARG_STRING, &opt_workload,
      "guest workload and its options, e.g. \"memverify --mib=64\"", "CMD" },
    { "fill", 0, 0, G_OPTION_ARG_INT, &opt_fill,
      "fill MIB of guest memory with non-zero data at boot", "MIB" },
    { "mode", 0, 0, G_OPTION_ARG_STRING, &opt_mode,
      "precopy, postcopy, postcopy-after=SECONDS, or postcopy-instant (our "
      "QEMU's x-postcopy-instant capability) (default postcopy)",
      "MODE" },
    { "net-tap", 0, 0, G_OPTION_ARG_STRING, &opt_net_tap,
      "give the guest a virtio-net NIC on tap device SRC (in the source's "
      "network namespace) and, on the destination, on DST (default SRC; "
      "two QEMUs in one namespace need two taps).  The taps must exist "
      "(scripts/pp-net tap)", "SRC[:DST]" },
    { "mac", 0, 0, G_OPTION_ARG_STRING, &opt_mac,
      "with --net-tap: the NIC's MAC (default 52:54:00:12:34:56)", "MAC" },
    { "guest-addr", 0, 0, G_OPTION_ARG_STRING, &opt_guest_addr,
      "with --net-tap: the guest's address (pp.net), e.g. 10.78.0.11/24",
      "A.B.C.D/P" },
    { "src-cpus", 0, 0, G_OPTION_ARG_STRING, &opt_src_cpus,
      "host CPUs for the source QEMU (default: no pinning)", "LIST" },
    { "dst-cpus", 0, 0, G_OPTION_ARG_STRING, &opt_dst_cpus,
      "host CPUs for the destination QEMU (default: no pinning)", "LIST" },
    { "run-dir", 0, 0, G_OPTION_ARG_FILENAME, &opt_run_dir,
      "directory for sockets and logs (default: a new temporary one)",
      "DIR" },
    { "verify", 0, 0, G_OPTION_ARG_NONE, &opt_verify,
      "after migrating, have memverify check every page", NULL },
    { "corrupt-page", 0, 0, G_OPTION_ARG_INT, &opt_corrupt_page,
      "before migrating, corrupt memverify's page N in the source QEMU's "
      "memory (tests the verifier; expect exit status 1)", "N" },
    { "settle", 0, 0, G_OPTION_ARG_DOUBLE, &opt_settle,
      "seconds to run on the source before migrating (default 1)", "S" },
    { "observe", 0, 0, G_OPTION_ARG_DOUBLE, &opt_observe,
      "seconds to watch the guest on the destination (default 2)", "S" },
    { "max-bandwidth", 0, 0, G_OPTION_ARG_INT, &opt_max_bandwidth,
      "pre-copy bandwidth limit in MiB/s (default 0: unlimited)", "MIBS" },
    { "downtime-ms", 0, 0, G_OPTION_ARG_INT, &opt_downtime_ms,
      "pre-copy downtime limit (default: QEMU's)", "MS" },
    { "src-netns", 0, 0, G_OPTION_ARG_STRING, &opt_src_netns,
      "run the source QEMU in network namespace NAME", "NAME" },
    { "dst-netns", 0, 0, G_OPTION_ARG_STRING, &opt_dst_netns,
      "run the destination QEMU in network namespace NAME", "NAME" },
    { "dst-addr", 0, 0, G_OPTION_ARG_STRING, &opt_dst_addr,
      "migrate over TCP to this address of the destination (default: a "
      "unix socket)", "IP" },
    { "src-addr", 0, 0, G_OPTION_ARG_STRING, &opt_src_addr,
      "with --moves 2 over TCP: the source host's address, where the "
      "second move's destination listens", "IP" },
    { "moves", 0, 0, G_OPTION_ARG_INT, &opt_moves,
      "migrate the guest N times (1 or 2; default 1).  2: after the "
      "first move and the observation, move it again, back to a new QEMU "
      "on the source's CPUs and network namespace; the report describes "
      "the second move, whose source is the QEMU the guest arrived in "
      "(a VM that moved before: it keeps its fault record)", "N" },
    { "forget-faults", 0, 0, G_OPTION_ARG_NONE, &opt_forget_faults,
      "our QEMU, with --moves 2: before the second move, clear the fault "
      "record the guest's QEMU made when it arrived (x-set-hot-set with "
      "an empty fault-order), to measure what the record brings", NULL },
    { "preempt", 0, 0, G_OPTION_ARG_NONE, &opt_preempt,
      "enable the postcopy-preempt capability on both sides", NULL },
    { "hot-first", 0, 0, G_OPTION_ARG_NONE, &opt_hot_first,
      "our QEMU: push the hottest pages first after the switch "
      "(capability x-postcopy-hot-first)", NULL },
    { "hot-track-ms", 0, 0, G_OPTION_ARG_INT, &opt_hot_track_ms,
      "our QEMU: length of the hot-page tracking window before the switch "
      "(x-hot-track-ms; needs --hot-first)", "MS" },
    { "hot-sample-ms", 0, 0, G_OPTION_ARG_INT, &opt_hot_sample_ms,
      "our QEMU: interval between two samples of the tracking window "
      "(x-hot-sample-ms; default QEMU's, 25)", "MS" },
    { "window", 0, 0, G_OPTION_ARG_INT, &opt_window,
      "our QEMU: largest adaptive fault window on the destination, in "
      "pages (x-postcopy-window)", "PAGES" },
    { "send-buffer", 0, 0, G_OPTION_ARG_INT64, &opt_send_buffer,
      "our QEMU: source socket send buffer once post-copy starts "
      "(x-postcopy-send-buffer; TCP only)", "BYTES" },
    { "pacing-rate", 0, 0, G_OPTION_ARG_INT64, &opt_pacing_rate,
      "our QEMU: pace the source's socket at this rate once post-copy "
      "starts (x-postcopy-pacing-rate; TCP only)", "BYTES_PER_S" },
    { "max-postcopy-bandwidth", 0, 0, G_OPTION_ARG_INT64,
      &opt_max_postcopy_bw,
      "limit the source's post-copy background stream to this rate "
      "(upstream's max-postcopy-bandwidth; default 0: unlimited)",
      "BYTES_PER_S" },
    { "no-collapse", 0, 0, G_OPTION_ARG_NONE, &opt_no_collapse,
      "our QEMU: the post-copy destination leaves its RAM on small pages "
      "after the move, as upstream does, for khugepaged to collapse "
      "(x-postcopy-collapse=false)", NULL },
    { "no-resume-pages", 0, 0, G_OPTION_ARG_NONE, &opt_no_resume_pages,
      "our QEMU: the hot-first push does not start with the pages the "
      "vCPUs resume on, their page tables, code and stack "
      "(-global migration.x-hot-resume-pages=off)", NULL },
    { "no-access-log", 0, 0, G_OPTION_ARG_NONE, &opt_no_access_log,
      "our QEMU: rank hot pages without TCG's access log, from the "
      "signals KVM has too (x-hot-track-access=false)", NULL },
    { "count-faults", 0, 0, G_OPTION_ARG_NONE, &opt_count_faults,
      "count the pages the destination's vCPUs faulted on (every "
      "userfault, from QEMU's postcopy_ram_fault_thread_request trace "
      "event; works with any QEMU build that has the log trace backend)",
      NULL },
    { "hot-set-in", 0, 0, G_OPTION_ARG_FILENAME, &opt_hot_set_in,
      "our QEMU: hand this hot set (JSON from --hot-set-out) to the source "
      "before migrating (x-set-hot-set; needs --hot-first)", "FILE" },
    { "hot-set-out", 0, 0, G_OPTION_ARG_FILENAME, &opt_hot_set_out,
      "our QEMU: after the migration, write the source's hot set "
      "(x-query-hot-set) to FILE", "FILE" },
    { "dst-hot-set-out", 0, 0, G_OPTION_ARG_FILENAME, &opt_dst_hot_set_out,
      "our QEMU: after the migration, write the destination's hot set "
      "(x-query-hot-set: the pages its guest faulted on, in fault "
      "order) to FILE", "FILE" },
    { "hot-set-binary", 0, 0, G_OPTION_ARG_NONE, &opt_hot_set_binary,
      "our QEMU: the hot-set files above are QEMU's binary hot-set "
      "files, which QEMU writes and reads itself (x-query-hot-set and "
      "x-set-hot-set with 'file'; for guests whose set does not fit a "
      "QMP message) instead of JSON", NULL },
    { "pause-after-ms", 0, 0, G_OPTION_ARG_INT, &opt_pause_after_ms,
      "post-copy recovery: MS after the switch, break the migration with "
      "migrate-pause, then resume it on a new channel (migrate-recover, "
      "migrate resume=true)", "MS" },
    { "trace", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opt_trace,
      "enable QEMU trace events matching PATTERN in both QEMUs (repeatable; "
      "QEMU's -trace syntax); each QEMU logs them with timestamps to "
      "trace.log in its run directory (tools/fault-trace.py reads them)",
      "PATTERN" },
    { "tls", 0, 0, G_OPTION_ARG_NONE, &opt_tls,
      "migrate over TLS: each QEMU gets PSK credentials (a fresh key in the "
      "run directory's tls/keys.psk) and tls-creds is set on both sides",
      NULL },
    { "timeout", 0, 0, G_OPTION_ARG_INT, &opt_timeout,
      "give up after this many seconds (default 300)", "S" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json,
      "print the report as one JSON object", NULL },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &opt_quiet,
      "no progress messages", NULL },
    { NULL }
};

typedef struct Report {
    const char *mode;
    const char *status;
    bool postcopy_switched;
    double switchover_ms;       /* dst RESUME - src STOP (event timestamps) */
    gint64 downtime_ms;         /* QEMU's own figure */
    gint64 total_ms;
    gint64 transferred;
    gint64 precopy_bytes, downtime_bytes, postcopy_bytes;
    gint64 postcopy_requests;
    gint64 blocktime_ms;        /* destination, post-copy only; -1 unknown */
    gint64 nonzero_pages, zero_pages;
    double rate_before, rate_after; /* workload units/s; NAN if none */
    double rate_first_s;        /* same, first second after the switch */
    double longest_gap_ms;      /* largest gap between progress records
                                 * across the switch (guest stall) */
    double longest_gap_end_ms;  /* when that stall ended, from the switch */
    double back_to_90_ms;       /* switch -> first 0.5 s at >= 90% rate */
    double rate_late;           /* workload rate over the observation's
                                 * second half */
    gint64 src_huge_kib;        /* source QEMU's AnonHugePages before the
                                 * move; -1 unknown */
    gint64 dst_huge_kib;        /* destination's, at the end of the
                                 * observation */
    gint64 src_rss_kib, dst_rss_kib; /* the same QEMUs' resident memory */
    double switch_delay_ms;     /* migrate command -> source STOP */
    double rate_window;         /* workload rate from the migrate command
                                 * to the switch (our tracking window) */
    double window_ms;           /* guest time from migrate to the switch */
    gint64 faulted_pages;       /* userfaults on the destination; -1 if
                                 * not counted (--count-faults) */
    PpPostcopyStats pc;         /* our QEMU's counters, both sides */
    const char *rate_unit;
    gint64 verify_bad;          /* -1: not verified */
    gint64 verify_pages;
    bool guest_running;
    bool recovered;             /* paused and resumed (--pause-after-ms) */
} Report;

/* Field @key ("Rss", "AnonHugePages": transparent huge pages backing
 * anonymous memory, the guest's RAM) of @pid's smaps_rollup in KiB, or
 * -1 if unreadable. */
static gint64 smaps_kib(int pid, const char *key)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/smaps_rollup", pid);
    g_autofree char *text = NULL;
    g_autofree char *needle = g_strdup_printf("\n%s:", key);

    if (pid <= 0 || !g_file_get_contents(path, &text, NULL, NULL)) {
        return -1;
    }
    const char *p = strstr(text, needle);
    if (!p) {
        return -1;
    }
    return g_ascii_strtoll(p + strlen(needle), NULL, 10);
}

static void progress(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static void progress(const char *fmt, ...)
{
    va_list ap;

    if (opt_quiet) {
        return;
    }
    va_start(ap, fmt);
    fputs("ppmig: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static bool parse_mode(MigMode *mode, double *after, GError **errp)
{
    if (strcmp(opt_mode, "precopy") == 0) {
        *mode = MODE_PRECOPY;
    } else if (strcmp(opt_mode, "postcopy") == 0) {
        *mode = MODE_POSTCOPY;
    } else if (strcmp(opt_mode, "postcopy-instant") == 0) {
        *mode = MODE_POSTCOPY_INSTANT;
    } else if (g_str_has_prefix(opt_mode, "postcopy-after=")) {
        char *end;
        const char *s = opt_mode + strlen("postcopy-after=");
        *after = g_ascii_strtod(s, &end);
        if (end == s || *end || *after < 0) {
            goto bad;
        }
        *mode = MODE_POSTCOPY_AFTER;
    } else {
        goto bad;
    }
    return true;
bad:
    g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                "invalid --mode '%s' (expected precopy, postcopy, "
                "postcopy-after=SECONDS or postcopy-instant)", opt_mode);
    return false;
}

/*
 * The workload program when it is one of ours that reports on the
 * console ("PP <program> ready", rates), which the report is made of;
 * NULL for none or for another program (a busybox applet such as httpd:
 * then only the guest's init is waited for).
 */
static const char *workload_name(void)
{
    static const char *const reporting[] = {
        "memverify", "memtouch", "cpuload", "fixedwork", NULL
    };
    static char name[64];

    if (!opt_workload) {
        return NULL;
    }
    g_strlcpy(name, opt_workload, sizeof(name));
    g_strstrip(name);
    char *sp = strchr(name, ' ');
    if (sp) {
        *sp = '\0';
    }
    return g_strv_contains(reporting, name) ? name : NULL;
}

/*
 * Wait until the serial log of @vm holds a record @prog/@event at or after
 * record index @from; returns its index, or -1 with an error.
 */
static int wait_record(PpVm *vm, guint from, const char *prog,
                       const char *event, int timeout_ms, GError **errp)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

    for (;;) {
        g_autoptr(GPtrArray) recs = pp_records_load(pp_vm_serial_log(vm));
        int i = pp_records_find(recs, from, prog, event);
        if (i >= 0) {
            return i;
        }
        int e = pp_records_find(recs, from, NULL, "error");
        if (e >= 0) {
            PpRecord *r = recs->pdata[e];
            const char *msg = pp_record_get(r, "msg");
            g_set_error(errp, PP_ERROR, PP_ERROR_FAILED,
                        "guest program '%s' failed on VM '%s': %s", r->prog,
                        pp_vm_name(vm), msg ? msg : "(no message)");
            return -1;
        }
        if (!pp_vm_is_running(vm)) {
            g_set_error(errp, PP_ERROR, PP_ERROR_EXITED,
                        "QEMU of VM '%s' exited while waiting for '%s %s'",
                        pp_vm_name(vm), prog, event);
            return -1;
        }
        if (g_get_monotonic_time() > deadline) {
            g_set_error(errp, PP_ERROR, PP_ERROR_TIMEOUT,
                        "VM '%s' printed no '%s %s' record within %d ms",
                        pp_vm_name(vm), prog, event, timeout_ms);
            return -1;
        }
        g_usleep(50 * 1000);
    }
}

static json_object *caps_args(MigMode mode, bool destination)
{
    PpMigCap want[8] = {
        { "events", true },
        { "postcopy-ram", mode != MODE_PRECOPY },
        { "postcopy-blocktime", mode != MODE_PRECOPY && destination },
        { "postcopy-preempt", mode != MODE_PRECOPY && opt_preempt },
    };
    size_t n = 4;

    /* Ours only when wanted: upstream QEMU does not know them. */
    if (mode == MODE_POSTCOPY_INSTANT && !destination) {
        want[n++] = (PpMigCap) { "x-postcopy-instant", true };
    }
    if (opt_hot_first && !destination) {
        want[n++] = (PpMigCap) { "x-postcopy-hot-first", true };
    }
    return pp_mig_caps_args(want, n);
}

static bool qmp_simple(PpQmp *qmp, const char *cmd, json_object *args,
                       GError **errp)
{
    g_autoptr(json_object) r = pp_qmp_execute(qmp, cmd, args, QMP_TIMEOUT_MS,
                                              errp);
    return r != NULL;
}

/* Binary hot-set files: QEMU opens them, so the path must be absolute. */
static json_object *hot_set_file_args(const char *file)
{
    g_autofree char *abs = g_canonicalize_filename(file, NULL);
    json_object *args = json_object_new_object();

    json_object_object_add(args, "file", json_object_new_string(abs));
    return args;
}

/* Hand the hot set in FILE (a JSON array as x-query-hot-set returns). */
static bool hand_in_hot_set(PpQmp *sq, const char *file, GError **errp)
{
    json_object *blocks;
    json_object *args;

    if (opt_hot_set_binary) {
        return qmp_simple(sq, "x-set-hot-set", hot_set_file_args(file), errp);
    }
    blocks = json_object_from_file(file);
    if (!blocks || !json_object_is_type(blocks, json_type_array)) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "%s: not a JSON array of hot-set blocks", file);
        json_object_put(blocks);
        return false;
    }
    args = json_object_new_object();
    json_object_object_add(args, "blocks", blocks);
    return qmp_simple(sq, "x-set-hot-set", args, errp);
}

static bool save_hot_set(PpQmp *sq, const char *file, GError **errp)
{
    g_autoptr(json_object) r = NULL;

    if (opt_hot_set_binary) {
        r = pp_qmp_execute(sq, "x-query-hot-set", hot_set_file_args(file),
                           QMP_TIMEOUT_MS, errp);
        return r != NULL;
    }
    r = pp_qmp_execute(sq, "x-query-hot-set", NULL, QMP_TIMEOUT_MS, errp);
    if (!r) {
        return false;
    }
    if (json_object_to_file_ext(file, r, JSON_C_TO_STRING_PLAIN) < 0) {
        g_set_error(errp, PP_ERROR, PP_ERROR_IO, "cannot write %s: %s",
                    file, json_util_get_last_err());
        return false;
    }
    return true;
}

static const char *jget_str(json_object *o, const char *key)
{
    json_object *x;

    return json_object_object_get_ex(o, key, &x) ?
           json_object_get_string(x) : "";
}

/* Host address of guest-physical @gpa in @qmp's VM, from "info ramblock". */
static guint64 ram_hva(PpQmp *qmp, guint64 gpa, GError **errp)
{
    json_object *args = json_object_new_object();
    json_object_object_add(args, "command-line",
                           json_object_new_string("info ramblock"));
    g_autoptr(json_object) out = pp_qmp_execute(qmp, "human-monitor-command",
                                                args, QMP_TIMEOUT_MS, errp);
    if (!out) {
        return 0;
    }
    g_auto(GStrv) lines = g_strsplit(json_object_get_string(out), "\n", -1);
    for (char **l = lines; *l; l++) {
        /* "name psize(with a space) offset used total hva ro": take the
         * name and the 0x-prefixed columns, whatever psize looks like. */
        g_auto(GStrv) tok = g_strsplit_set(g_strstrip(*l), " \t", -1);
        guint64 hex[4];
        int nhex = 0;
        for (char **t = tok; *t && nhex < 4; t++) {
            if (g_str_has_prefix(*t, "0x")) {
                hex[nhex++] = g_ascii_strtoull(*t, NULL, 16);
            }
        }
        if (nhex == 4 && tok[0] && strcmp(tok[0], "pc.ram") == 0) {
            /* hex[] = offset, used, total, hva; guest-physical below the
             * PCI hole maps linearly onto pc.ram. */
            if (gpa >= hex[1] || gpa >= 0xb0000000ULL) {
                break;
            }
            return hex[3] + gpa;
        }
    }
    g_set_error(errp, PP_ERROR, PP_ERROR_FAILED,
                "cannot map guest-physical 0x%" G_GINT64_MODIFIER "x to a "
                "host address", gpa);
    return 0;
}

/* Flip bits of one word of memverify's page @page inside the source QEMU. */
static bool corrupt_page(PpVm *vm, PpQmp *qmp, int page, GError **errp)
{
    g_autofree char *cmd = g_strdup_printf("where %d", page);
    g_autoptr(GPtrArray) before = pp_records_load(pp_vm_serial_log(vm));
    g_autoptr(GPtrArray) recs = NULL;
    guint64 gpa, hva, word;
    int i, fd;

    if (!pp_vm_serial_send(vm, cmd, errp)) {
        return false;
    }
    i = wait_record(vm, before->len, "memverify", "where", 10000, errp);
    if (i < 0) {
        return false;
    }
    recs = pp_records_load(pp_vm_serial_log(vm));
    const char *s = pp_record_get(recs->pdata[i], "gpa");
    gpa = s ? g_ascii_strtoull(s, NULL, 16) : 0;
    if (!gpa) {
        g_set_error(errp, PP_ERROR, PP_ERROR_FAILED,
                    "memverify did not report where page %d is", page);
        return false;
    }
    hva = ram_hva(qmp, gpa, errp);
    if (!hva) {
        return false;
    }
    g_autofree char *path = g_strdup_printf("/proc/%d/mem", pp_vm_pid(vm));
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 || pread(fd, &word, sizeof(word), (off_t)hva) != sizeof(word)) {
        g_set_error(errp, PP_ERROR, PP_ERROR_IO, "cannot read '%s': %s",
                    path, g_strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return false;
    }
    word ^= 0xff00;
    if (pwrite(fd, &word, sizeof(word), (off_t)hva) != sizeof(word)) {
        g_set_error(errp, PP_ERROR, PP_ERROR_IO, "cannot write '%s': %s",
                    path, g_strerror(errno));
        close(fd);
        return false;
    }
    close(fd);
    progress("corrupted page %d (gpa 0x%" G_GINT64_MODIFIER "x)", page, gpa);
    return true;
}

/* Progress units of a memtouch "rate" (touches) or memverify "pass"
 * (pages) record; -1 for other records. */
static gint64 record_units(PpRecord *r, const char **unit)
{
    if (strcmp(r->prog, "memtouch") == 0 && strcmp(r->event, "rate") == 0) {
        *unit = "touches/s";
        return pp_record_get_int(r, "units", 0);
    }
    if (strcmp(r->prog, "memverify") == 0 && strcmp(r->event, "pass") == 0) {
        *unit = "pages/s";
        return pp_record_get_int(r, "pages", 0);
    }
    return -1;
}

/*
 * Mean workload rate over guest time (t0, t1] of @recs (source records
 * followed by destination records).  A record counts the units done since
 * the previous one, so the interval is anchored at the last record at or
 * before t0 (or, lacking one, at the first record inside the window).
 */
static double workload_rate(GPtrArray *recs, double t0, double t1,
                            const char **unit)
{
    double anchor = NAN, last = NAN, sum = 0;

    for (guint i = 0; i < recs->len; i++) {
        PpRecord *r = recs->pdata[i];
        gint64 v = record_units(r, unit);
        if (v < 0 || isnan(r->t) || r->t > t1) {
            continue;
        }
        if (r->t <= t0 || isnan(anchor)) {
            anchor = r->t;
            sum = 0;
            continue;
        }
        sum += (double)v;
        last = r->t;
    }
    if (isnan(anchor) || isnan(last) || last <= anchor) {
        return NAN;
    }
    return sum / (last - anchor);
}

static gint cmp_double(gconstpointer a, gconstpointer b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Largest gap between consecutive progress records of either log with
 * guest time in (t0, t1]: the longest time the workload made no progress. */
static double longest_gap(GPtrArray *a, GPtrArray *b, double t0, double t1,
                          double *end)
{
    g_autoptr(GArray) ts = g_array_new(FALSE, FALSE, sizeof(double));
    double gap = NAN;

    *end = NAN;

    for (int k = 0; k < 2; k++) {
        GPtrArray *recs = k ? b : a;
        for (guint i = 0; i < recs->len; i++) {
            PpRecord *r = recs->pdata[i];
            if ((strcmp(r->event, "rate") == 0 ||
                 strcmp(r->event, "pass") == 0) &&
                !isnan(r->t) && r->t > t0 && r->t <= t1) {
                g_array_append_val(ts, r->t);
            }
        }
    }
    g_array_sort(ts, (GCompareFunc)cmp_double);
    for (guint i = 1; i < ts->len; i++) {
        double d = g_array_index(ts, double, i) -
                   g_array_index(ts, double, i - 1);
        if (isnan(gap) || d > gap) {
            gap = d;
            *end = g_array_index(ts, double, i);
        }
    }
    return gap * 1000;
}

/*
 * Time from the switch at @t_switch until the guest's throughput is back
 * to @target: the start of the first 0.5 s window (starting at a
 * progress record) whose rate reaches it.  NAN if that does not happen
 * within @observe seconds.
 */
static double back_to_rate(GPtrArray *recs, double t_switch, double observe,
                           double target)
{
    const double win = 0.5;

    if (isnan(target)) {
        return NAN;
    }
    /* The first record at or after the switch, then each one after it. */
    for (guint i = 0; i < recs->len; i++) {
        PpRecord *r = recs->pdata[i];
        double t = r->t;
        const char *unit = NULL;

        if (isnan(t) || t < t_switch || t + win > t_switch + observe ||
            strcmp(r->event, "rate") != 0) {
            continue;
        }
        if (workload_rate(recs, t, t + win, &unit) >= target) {
            return (t - t_switch) * 1000;
        }
    }
    return NAN;
}

static double last_record_time(GPtrArray *recs)
{
    for (guint i = recs->len; i > 0; i--) {
        PpRecord *r = recs->pdata[i - 1];
        if (!isnan(r->t)) {
            return r->t;
        }
    }
    return NAN;
}

static void print_report(const Report *rp)
{
    if (opt_json) {
        g_autoptr(json_object) o = json_object_new_object();
#define I(k, v) json_object_object_add(o, k, json_object_new_int64(v))
#define D(k, v) json_object_object_add(o, k, isnan(v) ? NULL : \
                                       json_object_new_double(v))
        json_object_object_add(o, "mode", json_object_new_string(rp->mode));
        json_object_object_add(o, "status",
                               json_object_new_string(rp->status));
        json_object_object_add(o, "postcopy-switched",
                               json_object_new_boolean(rp->postcopy_switched));
        json_object_object_add(o, "postcopy-recovered",
                               json_object_new_boolean(rp->recovered));
        D("switchover-ms", rp->switchover_ms);
        I("downtime-ms", rp->downtime_ms);
        I("total-ms", rp->total_ms);
        I("transferred-bytes", rp->transferred);
        I("precopy-bytes", rp->precopy_bytes);
        I("downtime-bytes", rp->downtime_bytes);
        I("postcopy-bytes", rp->postcopy_bytes);
        I("postcopy-requests", rp->postcopy_requests);
        I("blocktime-ms", rp->blocktime_ms);
        I("nonzero-pages", rp->nonzero_pages);
        I("zero-pages", rp->zero_pages);
        D("rate-before", rp->rate_before);
        D("rate-after", rp->rate_after);
        D("rate-first-second", rp->rate_first_s);
        D("longest-stall-ms", rp->longest_gap_ms);
        D("longest-stall-end-ms", rp->longest_gap_end_ms);
        D("back-to-90-ms", rp->back_to_90_ms);
        D("rate-late", rp->rate_late);
        I("src-anon-huge-kib", rp->src_huge_kib);
        I("dst-anon-huge-kib", rp->dst_huge_kib);
        I("src-rss-kib", rp->src_rss_kib);
        I("dst-rss-kib", rp->dst_rss_kib);
        D("switch-delay-ms", rp->switch_delay_ms);
        D("rate-window", rp->rate_window);
        D("window-ms", rp->window_ms);
        I("faulted-pages", rp->faulted_pages);
        I("remote-faults", rp->pc.remote_faults);
        I("prefetched-pages", rp->pc.prefetched_pages);
        I("fault-latency-p50-us", rp->pc.fault_p50_us);
        I("fault-latency-p99-us", rp->pc.fault_p99_us);
        I("fault-latency-max-us", rp->pc.fault_max_us);
        I("last-fault-ms", rp->pc.last_fault_ms);
        I("hot-pages", rp->pc.hot_pages);
        I("hot-pages-read-only", rp->pc.hot_read_only);
        I("hot-pages-faulted", rp->pc.hot_faulted);
        I("hot-pages-pushed", rp->pc.hot_pushed);
        I("hot-pushed-ms", rp->pc.hot_pushed_ms);
        I("hot-tracked-ms", rp->pc.hot_tracked_ms);
        I("dst-loaded-us", rp->pc.dst_loaded_us);
        I("mem-mib", opt_mem);
        I("hot-bytes", rp->pc.hot_bytes);
        I("hot-samples", rp->pc.hot_samples);
        I("hot-sample-max-us", rp->pc.hot_sample_max_us);
        I("hot-sample-mean-us", rp->pc.hot_sample_mean_us);
        I("fault-record-bytes", rp->pc.fault_record_bytes);
        json_object_object_add(o, "rate-unit", rp->rate_unit ?
                               json_object_new_string(rp->rate_unit) : NULL);
        json_object_object_add(o, "guest-running",
                               json_object_new_boolean(rp->guest_running));
        I("verify-bad-pages", rp->verify_bad);
        I("verify-pages", rp->verify_pages);
#undef I
#undef D
        printf("%s\n", json_object_to_json_string_ext(
                   o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        return;
    }
    printf("migration report (%s)\n", rp->mode);
    printf("  %-28s %s\n", "status", rp->status);
    printf("  %-28s %s\n", "switched to post-copy",
           rp->postcopy_switched ? "yes" : "no");
    if (opt_pause_after_ms >= 0) {
        printf("  %-28s %s\n", "paused and recovered",
               rp->recovered ? "yes" : "no");
    }
    printf("  %-28s %.1f ms\n", "switchover (STOP->RESUME)", rp->switchover_ms);
    printf("  %-28s %.0f ms\n", "migrate -> STOP", rp->switch_delay_ms);
    printf("  %-28s %" G_GINT64_FORMAT " ms\n", "downtime (QEMU)",
           rp->downtime_ms);
    printf("  %-28s %" G_GINT64_FORMAT " ms\n", "total time", rp->total_ms);
    printf("  %-28s %.1f MiB (pre-copy %.1f, stop %.1f, post-copy %.1f)\n",
           "bytes sent", rp->transferred / 1048576.0,
           rp->precopy_bytes / 1048576.0, rp->downtime_bytes / 1048576.0,
           rp->postcopy_bytes / 1048576.0);
    printf("  %-28s %" G_GINT64_FORMAT " non-zero, %" G_GINT64_FORMAT
           " zero\n", "pages", rp->nonzero_pages, rp->zero_pages);
    printf("  %-28s %" G_GINT64_FORMAT "\n", "remote page requests",
           rp->postcopy_requests);
    if (rp->faulted_pages >= 0) {
        printf("  %-28s %" G_GINT64_FORMAT "\n", "pages faulted (dst)",
               rp->faulted_pages);
    }
    if (rp->blocktime_ms >= 0) {
        printf("  %-28s %" G_GINT64_FORMAT " ms\n", "guest blocked (dst)",
               rp->blocktime_ms);
    }
    if (rp->pc.remote_faults >= 0) {
        printf("  %-28s %" G_GINT64_FORMAT " (+%" G_GINT64_FORMAT
               " pages prefetched), last at %" G_GINT64_FORMAT " ms\n",
               "remote faults (dst)", rp->pc.remote_faults,
               rp->pc.prefetched_pages, rp->pc.last_fault_ms);
        printf("  %-28s p50 %" G_GINT64_FORMAT " us, p99 %" G_GINT64_FORMAT
               " us, max %" G_GINT64_FORMAT " us\n", "fault latency",
               rp->pc.fault_p50_us, rp->pc.fault_p99_us,
               rp->pc.fault_max_us);
    }
    if (rp->pc.hot_pages > 0) {
        printf("  %-28s %" G_GINT64_FORMAT " pages (%" G_GINT64_FORMAT
               " only read, %" G_GINT64_FORMAT " faulted after the last "
               "move; tracked %" G_GINT64_FORMAT " ms), %"
               G_GINT64_FORMAT " pushed, done at %" G_GINT64_FORMAT " ms\n",
               "hot set (src)", rp->pc.hot_pages, rp->pc.hot_read_only,
               MAX(rp->pc.hot_faulted, 0), rp->pc.hot_tracked_ms,
               rp->pc.hot_pushed, rp->pc.hot_pushed_ms);
    }
    if (rp->pc.hot_samples > 0) {
        printf("  %-28s %" G_GINT64_FORMAT " samples, BQL held %"
               G_GINT64_FORMAT " us mean, %" G_GINT64_FORMAT " us max\n",
               "tracking window (src)", rp->pc.hot_samples,
               rp->pc.hot_sample_mean_us, rp->pc.hot_sample_max_us);
    }
    if (rp->pc.hot_bytes > 0) {
        printf("  %-28s %.2f MiB at most (%.3f%% of guest RAM)\n",
               "hot-first memory (src)", rp->pc.hot_bytes / 1048576.0,
               100.0 * rp->pc.hot_bytes / ((double)opt_mem * 1048576));
    }
    if (rp->pc.fault_record_bytes >= 0) {
        printf("  %-28s %" G_GINT64_FORMAT " bytes kept for the next move\n",
               "fault record (dst)", rp->pc.fault_record_bytes);
    }
    if (rp->pc.dst_loaded_us >= 0) {
        printf("  %-28s %" G_GINT64_FORMAT " us after the switch\n",
               "dst device state loaded", rp->pc.dst_loaded_us);
    }
    if (rp->rate_unit && !isnan(rp->rate_before) && !isnan(rp->rate_after)) {
        printf("  %-28s %.0f %s\n", "guest throughput before",
               rp->rate_before, rp->rate_unit);
        if (!isnan(rp->rate_window) && rp->window_ms >= 100) {
            printf("  %-28s %.0f %s (%.0f%% of before) for %.0f ms\n",
                   "  migrate -> switch", rp->rate_window, rp->rate_unit,
                   100.0 * rp->rate_window / rp->rate_before, rp->window_ms);
        }
        printf("  %-28s %.0f %s (%.0f%% of before)\n",
               "  first second after", rp->rate_first_s, rp->rate_unit,
               100.0 * rp->rate_first_s / rp->rate_before);
        printf("  %-28s %.0f %s (%.0f%% of before)\n",
               "  whole observation", rp->rate_after, rp->rate_unit,
               100.0 * rp->rate_after / rp->rate_before);
        if (!isnan(rp->rate_late)) {
            printf("  %-28s %.0f %s (%.0f%% of before)\n",
                   "  observation's second half", rp->rate_late,
                   rp->rate_unit, 100.0 * rp->rate_late / rp->rate_before);
        }
        printf("  %-28s %.0f ms (ending %+.0f ms from the switch)\n",
               "longest guest stall", rp->longest_gap_ms,
               rp->longest_gap_end_ms);
        if (isnan(rp->back_to_90_ms)) {
            printf("  %-28s not within %.1f s\n", "back to 90% throughput",
                   opt_observe);
        } else {
            printf("  %-28s %.0f ms\n", "back to 90% throughput",
                   rp->back_to_90_ms);
        }
    }
    if (rp->src_huge_kib >= 0 && rp->dst_huge_kib >= 0) {
        printf("  %-28s %" G_GINT64_FORMAT " MiB before on the source, %"
               G_GINT64_FORMAT " MiB at the end on the destination\n",
               "host huge pages (THP)", rp->src_huge_kib / 1024,
               rp->dst_huge_kib / 1024);
    }
    if (rp->src_rss_kib >= 0 && rp->dst_rss_kib >= 0) {
        printf("  %-28s %" G_GINT64_FORMAT " MiB source before, %"
               G_GINT64_FORMAT " MiB destination at the end\n",
               "QEMU resident memory", rp->src_rss_kib / 1024,
               rp->dst_rss_kib / 1024);
    }
    printf("  %-28s %s\n", "guest running on destination",
           rp->guest_running ? "yes" : "NO");
    if (rp->verify_bad >= 0) {
        printf("  %-28s %" G_GINT64_FORMAT " pages, %" G_GINT64_FORMAT
               " bad\n", "memory verified", rp->verify_pages, rp->verify_bad);
    }
}

/*
 * Have the destination listen for the migration stream with @cmd
 * (migrate-incoming, or migrate-recover for post-copy recovery): on
 * --dst-addr, port 0, then read back the port it got; else on the unix
 * socket @sock in the run directory.  Returns the URI to connect to.
 */
static char *dst_listen(PpQmp *dq, const char *addr, const char *cmd,
                        const char *sock, GError **errp)
{
    g_autofree char *uri = addr ?
        g_strdup_printf("tcp:%s:0", addr) :
        g_strdup_printf("unix:%s/%s", opt_run_dir, sock);
    json_object *args = json_object_new_object();

    json_object_object_add(args, "uri", json_object_new_string(uri));
    if (!qmp_simple(dq, cmd, args, errp)) {
        return NULL;
    }
    if (addr) {
        g_autoptr(json_object) di = pp_qmp_execute(dq, "query-migrate", NULL,
                                                   QMP_TIMEOUT_MS, errp);
        const char *port = di ? pp_mig_listen_port(di, errp) : NULL;

        if (!port) {
            return NULL;
        }
        return g_strdup_printf("tcp:%s:%s", addr, port);
    }
    return g_steal_pointer(&uri);
}

/*
 * Poll @qmp's query-migrate until its status is @want; returns that
 * reply (the caller owns it).  NULL, with the error set, if the
 * migration fails or is cancelled, or at @deadline.
 */
static json_object *wait_mig_status(PpQmp *qmp, const char *side,
                                    const char *want, gint64 deadline,
                                    GError **errp)
{
    for (;;) {
        json_object *info = pp_qmp_execute(qmp, "query-migrate", NULL,
                                           QMP_TIMEOUT_MS, errp);
        const char *st, *desc;
        bool late;

        if (!info) {
            return NULL;
        }
        st = jget_str(info, "status");
        if (strcmp(st, want) == 0) {
            return info;
        }
        late = g_get_monotonic_time() > deadline;
        if (late || strcmp(st, "failed") == 0 ||
            strcmp(st, "cancelled") == 0) {
            desc = jget_str(info, "error-desc");
            g_set_error(errp, PP_ERROR,
                        late ? PP_ERROR_TIMEOUT : PP_ERROR_FAILED,
                        "%s migration: waiting for status %s, got %s%s%s",
                        side, want, st, strcmp(desc, "-") ? ": " : "",
                        strcmp(desc, "-") ? desc : "");
            json_object_put(info);
            return NULL;
        }
        json_object_put(info);
        g_usleep(20 * 1000);
    }
}

/*
 * Post-copy recovery (--pause-after-ms): break the running post-copy
 * with migrate-pause, wait until both sides are paused, have the
 * destination listen again (migrate-recover) and resume the source on
 * the new channel (migrate with resume=true).
 */
static bool pause_and_recover(PpQmp *sq, PpQmp *dq, const char *addr,
                              gint64 deadline, GError **errp)
{
    g_autofree char *uri = NULL;
    json_object *args;

    progress("pausing post-copy (migrate-pause)");
    if (!qmp_simple(sq, "migrate-pause", NULL, errp)) {
        return false;
    }
    g_autoptr(json_object) src_paused =
        wait_mig_status(sq, "source", "postcopy-paused", deadline, errp);
    if (!src_paused) {
        return false;
    }
    g_autoptr(json_object) dst_paused =
        wait_mig_status(dq, "destination", "postcopy-paused", deadline, errp);
    if (!dst_paused) {
        return false;
    }
    uri = dst_listen(dq, addr, "migrate-recover", "mig-recover.sock", errp);
    if (!uri) {
        return false;
    }
    progress("resuming post-copy on %s", uri);
    args = json_object_new_object();
    json_object_object_add(args, "uri", json_object_new_string(uri));
    json_object_object_add(args, "resume", json_object_new_boolean(true));
    return qmp_simple(sq, "migrate", args, errp);
}

/* The trace event upstream and our QEMU emit for every userfault the
 * destination's fault thread reads (--count-faults). */
#define FAULT_EVENT "postcopy_ram_fault_thread_request"

/* --tls: the credentials' ids (every QEMU has both) and their key. */
#define TLS_CLIENT "pp-tls-client"
#define TLS_SERVER "pp-tls-server"

static bool tls_make_key(const char *dir, GError **errp)
{
    g_autofree char *path = g_build_filename(dir, "keys.psk", NULL);
    g_autoptr(GString) key = g_string_new("qemu:");

    if (g_mkdir_with_parents(dir, 0700) < 0) {
        g_set_error(errp, PP_ERROR, PP_ERROR_IO, "--tls: cannot create %s: %s",
                    dir, g_strerror(errno));
        return false;
    }
    for (int i = 0; i < 32; i++) {
        g_string_append_printf(key, "%02x", g_random_int_range(0, 256));
    }
    g_string_append_c(key, '\n');
    if (!g_file_set_contents_full(path, key->str, key->len,
                                  G_FILE_SET_CONTENTS_CONSISTENT, 0600,
                                  errp)) {
        g_prefix_error(errp, "--tls: ");
        return false;
    }
    return true;
}

/*
 * QEMU arguments beyond the guest's: for --tls the PSK credentials of
 * both endpoints (the guest may move back, so each QEMU has both); for
 * --trace (and, on the destination, --count-faults) the event patterns
 * and a log with timestamps at DIR/trace.log (an absolute path: QEMU
 * resolves -D against its own working directory).
 */
static char **qemu_extra_args(const char *dir, bool destination)
{
    GPtrArray *a = g_ptr_array_new();
    bool count = destination && opt_count_faults;

    if (opt_tls) {
        g_autofree char *tls = g_build_filename(opt_run_dir, "tls", NULL);
        g_autofree char *abs = g_canonicalize_filename(tls, NULL);

        g_ptr_array_add(a, g_strdup("-object"));
        g_ptr_array_add(a, g_strdup_printf(
            "tls-creds-psk,id=" TLS_CLIENT ",endpoint=client,dir=%s", abs));
        g_ptr_array_add(a, g_strdup("-object"));
        g_ptr_array_add(a, g_strdup_printf(
            "tls-creds-psk,id=" TLS_SERVER ",endpoint=server,dir=%s", abs));
    }

    if (opt_no_resume_pages) {
        g_ptr_array_add(a, g_strdup("-global"));
        g_ptr_array_add(a, g_strdup("migration.x-hot-resume-pages=off"));
    }
    for (char **t = opt_trace; t && *t; t++) {
        g_ptr_array_add(a, g_strdup("-trace"));
        g_ptr_array_add(a, g_strdup(*t));
    }
    if (count) {
        g_ptr_array_add(a, g_strdup("-trace"));
        g_ptr_array_add(a, g_strdup(FAULT_EVENT));
    }
    if ((opt_trace && *opt_trace) || count) {
        g_autofree char *log = g_build_filename(dir, "trace.log", NULL);

        g_ptr_array_add(a, g_strdup("-D"));
        g_ptr_array_add(a, g_canonicalize_filename(log, NULL));
        g_ptr_array_add(a, g_strdup("-msg"));
        g_ptr_array_add(a, g_strdup("timestamp=on"));
    }
    g_ptr_array_add(a, NULL);
    return (char **)g_ptr_array_free(a, FALSE);
}

/*
 * --forget-faults: hand the QEMU its own hot set back with every block's
 * fault record emptied.
 */
static bool forget_faults(PpQmp *q, GError **errp)
{
    g_autoptr(json_object) set = pp_qmp_execute(q, "x-query-hot-set", NULL,
                                                QMP_TIMEOUT_MS, errp);
    json_object *args;

    if (!set || !pp_json_is(set, json_type_array, "x-query-hot-set", errp)) {
        return false;
    }
    for (size_t i = 0; i < json_object_array_length(set); i++) {
        json_object_object_add(json_object_array_get_idx(set, i),
                               "fault-order", json_object_new_array());
    }
    args = json_object_new_object();
    json_object_object_add(args, "blocks", json_object_get(set));
    progress("forgetting the fault record (%zu blocks)",
             json_object_array_length(set));
    return qmp_simple(q, "x-set-hot-set", args, errp);
}

/* Count the userfaults in the destination's trace log (--count-faults). */
static bool count_faults(const char *dst_dir, gint64 *count, GError **errp)
{
    g_autofree char *path = g_build_filename(dst_dir, "trace.log", NULL);
    g_autofree char *text = NULL;

    if (!g_file_get_contents(path, &text, NULL, errp)) {
        g_prefix_error(errp, "--count-faults: ");
        return false;
    }
    *count = 0;
    for (const char *p = text; (p = strstr(p, FAULT_EVENT)); p++) {
        ++*count;
    }
    return true;
}

/*
 * One move of the guest from @from to @to (QMP @fq and @tq; @to started
 * with -incoming defer, listening on @addr over TCP or on unix socket
 * @sock): capabilities and parameters on both sides, the migration, and
 * what the guest did around it.  Fills @rp; @first says whether this is
 * the guest's first move (a hot set is handed in only then).
 */
static bool move(Report *rp, MigMode mode, double after, bool first,
                 PpVm *from, PpQmp *fq, PpVm *to, PpQmp *tq,
                 const char *addr, const char *sock, GError **errp)
{
    g_autofree char *mig_uri = NULL;
    const char *wl = workload_name();
    int timeout_ms = opt_timeout * 1000;

    /* What the report says of a move is of this one. */
    rp->postcopy_switched = false;
    rp->recovered = false;

    /* Capabilities and parameters on both sides. */
    if (!qmp_simple(fq, "migrate-set-capabilities", caps_args(mode, false),
                    errp) ||
        !qmp_simple(tq, "migrate-set-capabilities", caps_args(mode, true),
                    errp)) {
        return false;
    }
    json_object *params = json_object_new_object();
    json_object_object_add(params, "max-bandwidth", json_object_new_int64(
                               (gint64)opt_max_bandwidth * 1048576));
    if (opt_downtime_ms > 0) {
        json_object_object_add(params, "downtime-limit",
                               json_object_new_int64(opt_downtime_ms));
    }
    if (opt_hot_track_ms > 0) {
        json_object_object_add(params, "x-hot-track-ms",
                               json_object_new_int64(opt_hot_track_ms));
    }
    if (opt_hot_sample_ms > 0) {
        json_object_object_add(params, "x-hot-sample-ms",
                               json_object_new_int64(opt_hot_sample_ms));
    }
    if (opt_send_buffer > 0) {
        json_object_object_add(params, "x-postcopy-send-buffer",
                               json_object_new_int64(opt_send_buffer));
    }
    if (opt_pacing_rate > 0) {
        json_object_object_add(params, "x-postcopy-pacing-rate",
                               json_object_new_int64(opt_pacing_rate));
    }
    if (opt_max_postcopy_bw > 0) {
        json_object_object_add(params, "max-postcopy-bandwidth",
                               json_object_new_int64(opt_max_postcopy_bw));
    }
    if (opt_no_access_log) {
        json_object_object_add(params, "x-hot-track-access",
                               json_object_new_boolean(false));
    }
    if (opt_tls) {
        json_object_object_add(params, "tls-creds",
                               json_object_new_string(TLS_CLIENT));
    }
    if (!qmp_simple(fq, "migrate-set-parameters", params, errp)) {
        return false;
    }
    if (opt_window > 0 || opt_tls || opt_no_collapse) {
        json_object *dp = json_object_new_object();
        if (opt_window > 0) {
            json_object_object_add(dp, "x-postcopy-window",
                                   json_object_new_int64(opt_window));
        }
        if (opt_no_collapse) {
            json_object_object_add(dp, "x-postcopy-collapse",
                                   json_object_new_boolean(false));
        }
        if (opt_tls) {
            json_object_object_add(dp, "tls-creds",
                                   json_object_new_string(TLS_SERVER));
        }
        if (!qmp_simple(tq, "migrate-set-parameters", dp, errp)) {
            return false;
        }
    }
    if (first && opt_hot_set_in && !hand_in_hot_set(fq, opt_hot_set_in,
                                                     errp)) {
        return false;
    }
    mig_uri = dst_listen(tq, addr, "migrate-incoming", sock, errp);
    if (!mig_uri) {
        return false;
    }
    json_object *out = json_object_new_object();
    json_object_object_add(out, "uri", json_object_new_string(mig_uri));
    /* The guest's time when migrate is sent: its rate before the move is
     * measured up to here, so that whatever the migration does before
     * the switch (our tracking window) counts against it, not in the
     * baseline. */
    double t_migrate = NAN;
    if (wl) {
        g_autoptr(GPtrArray) recs = pp_records_load(pp_vm_serial_log(from));
        t_migrate = last_record_time(recs);
    }
    rp->src_huge_kib = smaps_kib(pp_vm_pid(from), "AnonHugePages");
    rp->src_rss_kib = smaps_kib(pp_vm_pid(from), "Rss");
    progress("migrating (%s)", opt_mode);
    gint64 start = g_get_monotonic_time();
    gint64 start_wall = g_get_real_time();
    if (!qmp_simple(fq, "migrate", out, errp)) {
        return false;
    }
    rp->status = "active";

    bool postcopy_asked = false;
    gint64 switched_at = 0;
    gint64 deadline = start + (gint64)timeout_ms * 1000;
    g_autoptr(json_object) info = NULL;
    for (;;) {
        if ((mode == MODE_POSTCOPY || mode == MODE_POSTCOPY_AFTER) &&
            !postcopy_asked &&
            (mode == MODE_POSTCOPY ||
             g_get_monotonic_time() - start >= after * G_USEC_PER_SEC)) {
            GError *err = NULL;
            if (!qmp_simple(fq, "migrate-start-postcopy", NULL, &err)) {
                /* Pre-copy may have finished first: not an error. */
                progress("migrate-start-postcopy: %s", err->message);
                g_error_free(err);
            }
            postcopy_asked = true;
        }
        g_clear_pointer(&info, json_object_put);
        info = pp_qmp_execute(fq, "query-migrate", NULL, QMP_TIMEOUT_MS, errp);
        if (!info) {
            return false;
        }
        const char *st = jget_str(info, "status");
        if (strcmp(st, "postcopy-active") == 0 ||
            (mode == MODE_POSTCOPY_INSTANT && strcmp(st, "completed") == 0 &&
             pp_json_int(info, "ram", "postcopy-bytes") > 0)) {
            rp->postcopy_switched = true;
            if (!switched_at) {
                switched_at = g_get_monotonic_time();
            }
        }
        if (strcmp(st, "completed") == 0) {
            if (opt_pause_after_ms >= 0 && !rp->recovered) {
                g_set_error(errp, PP_ERROR, PP_ERROR_FAILED,
                            "post-copy completed before the pause at %d ms "
                            "after the switch", opt_pause_after_ms);
                return false;
            }
            break;
        }
        if (opt_pause_after_ms >= 0 && !rp->recovered &&
            strcmp(st, "postcopy-active") == 0 &&
            g_get_monotonic_time() - switched_at >=
            (gint64)opt_pause_after_ms * 1000) {
            if (!pause_and_recover(fq, tq, addr, deadline, errp)) {
                rp->status = "failed";
                return false;
            }
            rp->recovered = true;
            continue;
        }
        if (strcmp(st, "failed") == 0 || strcmp(st, "cancelled") == 0) {
            rp->status = "failed";
            g_set_error(errp, PP_ERROR, PP_ERROR_FAILED,
                        "migration %s: %s", st, jget_str(info, "error-desc"));
            return false;
        }
        if (g_get_monotonic_time() > deadline) {
            g_set_error(errp, PP_ERROR, PP_ERROR_TIMEOUT,
                        "migration did not complete within %d s (status %s)",
                        opt_timeout, st);
            qmp_simple(fq, "migrate_cancel", NULL, NULL);
            return false;
        }
        g_usleep(50 * 1000);
    }
    rp->status = "completed";
    rp->total_ms = pp_json_int(info, "total-time", NULL);
    rp->downtime_ms = pp_json_int(info, "downtime", NULL);
    rp->transferred = pp_json_int(info, "ram", "transferred");
    rp->precopy_bytes = pp_json_int(info, "ram", "precopy-bytes");
    rp->downtime_bytes = pp_json_int(info, "ram", "downtime-bytes");
    rp->postcopy_bytes = pp_json_int(info, "ram", "postcopy-bytes");
    rp->postcopy_requests = pp_json_int(info, "ram", "postcopy-requests");
    rp->nonzero_pages = pp_json_int(info, "ram", "normal");
    rp->zero_pages = pp_json_int(info, "ram", "duplicate");
    pp_postcopy_stats_init(&rp->pc);
    pp_postcopy_stats_update(&rp->pc, info, NULL);

    /* The destination finishes on its own schedule (post-copy: when the
     * last page has arrived and the source's stream ended). */
    g_autoptr(json_object) di = wait_mig_status(tq, "destination",
                                                "completed", deadline, errp);
    if (!di) {
        return false;
    }
    rp->blocktime_ms = pp_json_int(di, "postcopy-blocktime", NULL);
    pp_postcopy_stats_update(&rp->pc, di, NULL);

    g_autoptr(json_object) stop = pp_qmp_next_event(fq, "STOP", 5000, errp);
    if (!stop) {
        return false;
    }
    g_autoptr(json_object) resume = pp_qmp_next_event(tq, "RESUME", 5000,
                                                      errp);
    if (!resume) {
        return false;
    }
    rp->switchover_ms = (pp_qmp_event_time_us(resume) -
                         pp_qmp_event_time_us(stop)) / 1000.0;
    rp->switch_delay_ms = (pp_qmp_event_time_us(stop) - start_wall) / 1000.0;
    progress("completed in %" G_GINT64_FORMAT " ms; switchover %.1f ms",
             rp->total_ms, rp->switchover_ms);

    /* Watch the guest on the destination. */
    g_autoptr(GPtrArray) src_recs = pp_records_load(pp_vm_serial_log(from));
    double t_switch = last_record_time(src_recs);
    double gap_end;
    g_usleep((gulong)(opt_observe * G_USEC_PER_SEC));
    g_autoptr(json_object) status = pp_qmp_execute(tq, "query-status", NULL,
                                                   QMP_TIMEOUT_MS, errp);
    if (!status) {
        return false;
    }
    rp->dst_huge_kib = smaps_kib(pp_vm_pid(to), "AnonHugePages");
    rp->dst_rss_kib = smaps_kib(pp_vm_pid(to), "Rss");
    g_autoptr(GPtrArray) dst_recs = pp_records_load(pp_vm_serial_log(to));
    /* With a workload, the guest must also have printed on the
     * destination (an idle guest prints nothing after "ready"). */
    rp->guest_running = strcmp(jget_str(status, "status"), "running") == 0 &&
                        (!wl || dst_recs->len > 0);
    if (!rp->guest_running) {
        g_set_error(errp, PP_ERROR, PP_ERROR_FAILED,
                    "guest is not running on the destination (status '%s', "
                    "%u console records)", jget_str(status, "status"),
                    dst_recs->len);
        return false;
    }
    if (wl) {
        g_autoptr(GPtrArray) all = g_ptr_array_new();
        for (guint i = 0; i < src_recs->len; i++) {
            g_ptr_array_add(all, src_recs->pdata[i]);
        }
        for (guint i = 0; i < dst_recs->len; i++) {
            g_ptr_array_add(all, dst_recs->pdata[i]);
        }
        rp->rate_before = workload_rate(all, t_migrate - opt_settle,
                                        t_migrate, &rp->rate_unit);
        rp->window_ms = (t_switch - t_migrate) * 1000.0;
        rp->rate_window = workload_rate(all, t_migrate, t_switch,
                                        &rp->rate_unit);
        rp->rate_after = workload_rate(all, t_switch, t_switch + opt_observe,
                                       &rp->rate_unit);
        rp->rate_first_s = workload_rate(all, t_switch, t_switch + 1.0,
                                         &rp->rate_unit);
        rp->longest_gap_ms = longest_gap(src_recs, dst_recs,
                                         t_migrate - opt_settle,
                                         t_switch + opt_observe, &gap_end);
        rp->longest_gap_end_ms = (gap_end - t_switch) * 1000.0;
        rp->back_to_90_ms = back_to_rate(all, t_switch, opt_observe,
                                         0.9 * rp->rate_before);
        rp->rate_late = workload_rate(all, t_switch + opt_observe / 2,
                                      t_switch + opt_observe,
                                      &rp->rate_unit);
    }
    return true;
}

/* Start a QEMU as @cfg says and connect to its QMP monitor. */
static bool start_vm(const PpVmConfig *cfg, PpVm **vm, PpQmp **qmp,
                     GError **errp)
{
    *vm = pp_vm_start(cfg, 30000, errp);
    if (!*vm) {
        return false;
    }
    *qmp = pp_qmp_connect(pp_vm_qmp_path(*vm), QMP_TIMEOUT_MS, errp);
    return *qmp != NULL;
}

static bool run(Report *rp, GError **errp)
{
    MigMode mode;
    double after = 0;
    g_autofree char *append = pp_guest_cmdline(opt_workload, (guint64)opt_fill,
                                               opt_guest_addr, errp);
    g_auto(GStrv) taps = opt_net_tap ? g_strsplit(opt_net_tap, ":", 2) : NULL;
    g_autofree char *src_dir = NULL, *dst_dir = NULL;
    g_auto(GStrv) src_trace = NULL, dst_trace = NULL;
    g_autoptr(PpVm) src = NULL, dst = NULL;
    g_autoptr(PpQmp) sq = NULL, dq = NULL;
    const char *wl = workload_name();
    const char *default_fw[] = { "/usr/share/seabios", "/usr/share/qemu",
                                 "/usr/lib/ipxe/qemu", NULL };

    if (!append || !parse_mode(&mode, &after, errp)) {
        return false;
    }
    rp->mode = opt_mode;
    rp->status = "not-started";
    rp->verify_bad = -1;
    rp->blocktime_ms = -1;
    rp->rate_before = rp->rate_after = rp->rate_first_s = NAN;
    rp->longest_gap_ms = rp->back_to_90_ms = rp->switch_delay_ms = NAN;
    rp->longest_gap_end_ms = NAN;
    rp->rate_window = rp->window_ms = NAN;
    rp->rate_late = NAN;
    rp->src_huge_kib = rp->dst_huge_kib = -1;
    rp->src_rss_kib = rp->dst_rss_kib = -1;
    rp->faulted_pages = -1;
    pp_postcopy_stats_init(&rp->pc);
    if ((opt_hot_track_ms > 0 || opt_hot_set_in) && !opt_hot_first) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "--hot-track-ms and --hot-set-in need --hot-first");
        return false;
    }
    if (opt_hot_track_ms < 0 || opt_window < 0 || opt_send_buffer < 0 ||
        opt_pacing_rate < 0 || opt_max_postcopy_bw < 0 ||
        opt_hot_sample_ms < 0) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "--hot-track-ms, --hot-sample-ms, --window, --send-buffer, "
                    "--pacing-rate and --max-postcopy-bandwidth must not be "
                    "negative");
        return false;
    }
    if (opt_pause_after_ms >= 0 && mode == MODE_PRECOPY) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "--pause-after-ms needs a post-copy mode");
        return false;
    }
    if ((opt_verify || opt_corrupt_page >= 0) &&
        g_strcmp0(wl, "memverify") != 0) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "--verify and --corrupt-page need --workload memverify");
        return false;
    }
    if (opt_moves < 1 || opt_moves > 2) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "--moves must be 1 or 2, not %d", opt_moves);
        return false;
    }
    if (opt_forget_faults && opt_moves != 2) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "--forget-faults needs --moves 2");
        return false;
    }
    if (opt_moves == 2 && !opt_dst_addr != !opt_src_addr) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "--moves 2 over TCP needs both --dst-addr and "
                    "--src-addr (or neither, for unix sockets)");
        return false;
    }
    if (!opt_run_dir) {
        opt_run_dir = g_dir_make_tmp("ppmig-XXXXXX", errp);
        if (!opt_run_dir) {
            return false;
        }
    }
    src_dir = g_build_filename(opt_run_dir, "src", NULL);
    if (opt_tls) {
        g_autofree char *tls = g_build_filename(opt_run_dir, "tls", NULL);

        if (!tls_make_key(tls, errp)) {
            return false;
        }
    }
    src_trace = qemu_extra_args(src_dir, false);

    PpVmConfig cfg = {
        .name = "src",
        .qemu = opt_qemu,
        .firmware_dirs = opt_firmware ? (const char *const *)opt_firmware :
                         default_fw,
        .accel = opt_accel,
        .mem_mib = (guint)opt_mem,
        .vcpus = (guint)opt_vcpus,
        .kernel = opt_kernel,
        .initrd = opt_initrd,
        .append = append,
        .cpus = opt_src_cpus,
        .netns = opt_src_netns,
        .run_dir = src_dir,
        .die_with_parent = true,
        .extra_args = (const char *const *)src_trace,
        .net_tap = taps ? taps[0] : NULL,
        .net_mac = opt_mac ? opt_mac : "52:54:00:12:34:56",
    };

    progress("starting source (%s, %d MiB, %s)", opt_accel, opt_mem,
             opt_workload ? opt_workload : "no workload");
    if (!start_vm(&cfg, &src, &sq, errp)) {
        return false;
    }
    if (wait_record(src, 0, wl ? wl : "init", "ready", 120000, errp) < 0) {
        return false;
    }
    progress("guest ready; settling %.1f s", opt_settle);
    g_usleep((gulong)(opt_settle * G_USEC_PER_SEC));

    if (opt_corrupt_page >= 0 && !corrupt_page(src, sq, opt_corrupt_page,
                                               errp)) {
        return false;
    }

    for (int m = 0; m < opt_moves; m++) {
        /* The second move goes back to the source's host. */
        bool back = m % 2;

        if (m > 0) {
            /* The guest runs on dst now; its old QEMU only holds a CPU. */
            pp_vm_stop(src, 5000, NULL);
            g_clear_pointer(&sq, pp_qmp_free);
            g_clear_pointer(&src, pp_vm_free);
            src = g_steal_pointer(&dst);
            sq = g_steal_pointer(&dq);
            g_clear_pointer(&dst_trace, g_strfreev);
            g_clear_pointer(&dst_dir, g_free);
            progress("moving the guest again");
        }
        dst_dir = g_build_filename(opt_run_dir, m ? "dst2" : "dst", NULL);
        dst_trace = qemu_extra_args(dst_dir, true);
        cfg.name = m ? "dst2" : "dst";
        cfg.cpus = back ? opt_src_cpus : opt_dst_cpus;
        cfg.netns = back ? opt_src_netns : opt_dst_netns;
        if (taps) {
            cfg.net_tap = back || !taps[1] ? taps[0] : taps[1];
        }
        cfg.run_dir = dst_dir;
        cfg.incoming_defer = true;
        cfg.extra_args = (const char *const *)dst_trace;
        if (!start_vm(&cfg, &dst, &dq, errp)) {
            return false;
        }
        if (m > 0 && opt_forget_faults && !forget_faults(sq, errp)) {
            return false;
        }
        if (!move(rp, mode, after, m == 0, src, sq, dst, dq,
                  back ? opt_src_addr : opt_dst_addr,
                  m ? "mig2.sock" : "mig.sock", errp)) {
            return false;
        }
    }
    if (opt_hot_set_out && !save_hot_set(sq, opt_hot_set_out, errp)) {
        return false;
    }
    if (opt_dst_hot_set_out && !save_hot_set(dq, opt_dst_hot_set_out, errp)) {
        return false;
    }

    if (opt_verify) {
        g_autoptr(GPtrArray) dst_recs = pp_records_load(pp_vm_serial_log(dst));

        if (!pp_vm_serial_send(dst, "verify", errp)) {
            return false;
        }
        int i = wait_record(dst, dst_recs->len, "memverify", "check", 120000,
                            errp);
        if (i < 0) {
            return false;
        }
        g_autoptr(GPtrArray) recs = pp_records_load(pp_vm_serial_log(dst));
        PpRecord *r = recs->pdata[i];
        rp->verify_pages = pp_record_get_int(r, "pages", -1);
        /* bad_total counts every bad page seen on the source (before the
         * switch) and on the destination, by passes and by this check. */
        rp->verify_bad = pp_record_get_int(r, "bad_total", -1);
        if (rp->verify_bad < 0 || rp->verify_pages <= 0) {
            g_set_error(errp, PP_ERROR, PP_ERROR_PROTOCOL,
                        "malformed memverify check record");
            return false;
        }
    }
    pp_vm_stop(dst, 5000, NULL);
    pp_vm_stop(src, 5000, NULL);
    /* QEMU has exited, so its trace log is complete. */
    if (opt_count_faults && !count_faults(dst_dir, &rp->faulted_pages,
                                          errp)) {
        return false;
    }
    return true;
}

int main(int argc, char **argv)
{
    g_autoptr(GOptionContext) ctx = g_option_context_new(
        "- boot a guest, migrate it once, report");
    g_autoptr(GError) err = NULL;
    Report rp = { 0 };

    g_option_context_add_main_entries(ctx, entries, NULL);
    g_option_context_set_description(ctx,
        "Examples:\n"
        "  ppmig --workload \"memverify --mib=64 --pass-ms=1000\" "
        "--mode precopy --verify\n"
        "  ppmig --workload \"memtouch --fill=384 --hot=64\" --mode postcopy "
        "--src-cpus 0 --dst-cpus 1 --observe 5\n"
        "\nExit status: 0 migrated (and verified), 1 memory verification "
        "failed, 2 other failure.\n");
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        fprintf(stderr, "ppmig: %s\n", err->message);
        return 2;
    }
    if (argc > 1) {
        fprintf(stderr, "ppmig: unexpected argument '%s'\n", argv[1]);
        return 2;
    }
    if (!opt_qemu) {
        opt_qemu = "build/qemu/qemu-system-x86_64";
    }
    if (!opt_kernel) {
        opt_kernel = "build/guest/vmlinuz";
    }
    if (!opt_initrd) {
        opt_initrd = "build/guest/initrd.img";
    }
    if (!run(&rp, &err)) {
        fprintf(stderr, "ppmig: %s\n", err->message);
        fprintf(stderr, "ppmig: logs are in %s\n", opt_run_dir ? opt_run_dir :
                "(none)");
        return 2;
    }
    print_report(&rp);
    if (rp.verify_bad > 0) {
        fprintf(stderr, "ppmig: memory verification failed: %" G_GINT64_FORMAT
                " bad page(s); see %s/*/serial.log\n", rp.verify_bad,
                opt_run_dir);
        return 1;
    }
    return 0;
}
