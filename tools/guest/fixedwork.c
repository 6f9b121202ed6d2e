/*
 * fixedwork: a fixed amount of work with the character of a parallel
 * compile (`make -j2`), standing in for the paper's kernel build.
 *
 * The work is a number of units, like the files of a project.  Up to
 * --jobs units run at once, each in a process of its own (forked, as make
 * runs cc1): the process maps a fresh area of about --unit-mib MiB (0.5x
 * to 1.5x, chosen per unit as compilers' footprints vary by file), writes
 * every page of it, runs --unit-work rounds of a hash over it in a
 * pseudo-random order (reading and rewriting every word: CPU-bound and
 * memory-dirtying), and writes an "object" of --obj-kib KiB to /tmp.
 * When all units are done, a "link" reads every object.  The work is set
 * by count, never by time, so it is the same in every placement; every
 * unit's result is a function of (seed, unit) alone, so the final
 * checksum is the same in every run, and a page corrupted by a move
 * changes it.
 *
 * Usage: fixedwork --units=U [--jobs=J] [--unit-mib=M] [--unit-work=W]
 *                  [--obj-kib=K] [--seed=S] [--start-at=UPTIME]
 *        fixedwork --calibrate=SECONDS [--jobs=J] [--unit-mib=M] ...
 *   --start-at   wait until the guest has been up UPTIME seconds (its
 *                monotonic clock), so that two guests booted together
 *                start apart by a known time whatever their boot speed
 *   --calibrate  run units for SECONDS and report how many a second ran
 *                (to size --units for a wanted duration); no checksum
 * Records:
 *   PP fixedwork ready units=U jobs=J unit_mib=M unit_work=W
 *   PP fixedwork start units=U
 *   PP fixedwork progress done=N of=U        (about once a second)
 *   PP fixedwork done units=U elapsed=S checksum=HEX
 *   PP fixedwork calib units=N elapsed=S units_per_s=R
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "ppguest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROG "fixedwork"
#define MAX_JOBS 64
#define OBJ_DIR "/tmp/fixedwork"

typedef struct Opts {
    uint64_t units, jobs, unit_mib, unit_work, obj_kib, seed;
    double start_at, calibrate;
} Opts;

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static char *obj_path(uint64_t unit)
{
    static char path[64];

    snprintf(path, sizeof(path), OBJ_DIR "/u%06llu.o",
             (unsigned long long)unit);
    return path;
}

/* One unit, in its own process: the result goes into its object file. */
static void run_unit(const Opts *o, uint64_t unit)
{
    uint64_t rng = mix(o->seed * 0x9e3779b97f4a7c15ULL + unit + 1) | 1;
    /* 0.5x .. 1.5x of unit_mib, in whole pages, a power of two of words
     * for the walk below (rounded down). */
    uint64_t bytes = o->unit_mib * PP_MIB / 2 +
                     pp_rand(&rng) % (o->unit_mib * PP_MIB + 1);
    uint64_t words = 1;
    while (words * 2 * sizeof(uint64_t) <= bytes) {
        words *= 2;
    }
    uint64_t *a = mmap(NULL, words * sizeof(uint64_t),
                       PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
    if (a == MAP_FAILED) {
        pp_die(PROG, "unit %llu: cannot map %llu MiB: %s",
               (unsigned long long)unit,
               (unsigned long long)(words * 8 / PP_MIB), strerror(errno));
    }
    madvise(a, words * sizeof(uint64_t), MADV_NOHUGEPAGE);
    for (uint64_t i = 0; i < words; i++) {
        a[i] = mix(rng + i);
    }
    /* Rounds over every word in an order that changes per round: an odd
     * multiplier and an odd step walk all of a power-of-two table. */
    uint64_t x = rng;
    for (uint64_t r = 0; r < o->unit_work; r++) {
        uint64_t mul = (pp_rand(&rng) << 2) | 1, add = pp_rand(&rng) | 1;
        uint64_t idx = pp_rand(&rng) & (words - 1);
        for (uint64_t i = 0; i < words; i++) {
            idx = (idx * mul + add) & (words - 1);
            x = mix(x ^ a[idx]);
            a[idx] = x;
        }
    }
    /* The object: K KiB derived from the area, and its checksum. */
    uint64_t obj_words = o->obj_kib * 1024 / sizeof(uint64_t);
    uint64_t *obj = malloc(obj_words * sizeof(uint64_t) + 8);
    if (!obj) {
        pp_die(PROG, "out of memory");
    }
    for (uint64_t i = 0; i < obj_words; i++) {
        obj[i] = a[(i * 4099) & (words - 1)] ^ x;
    }
    obj[obj_words] = x;
    int fd = open(obj_path(unit), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    size_t len = obj_words * sizeof(uint64_t) + 8;
    if (fd < 0 || write(fd, obj, len) != (ssize_t)len || close(fd) < 0) {
        pp_die(PROG, "cannot write %s: %s", obj_path(unit), strerror(errno));
    }
    _exit(0);
}

/* Fork units, at most o->jobs at a time, until @units ran or, when
 * @until > 0, until that time.  Returns how many completed. */
static uint64_t run_units(const Opts *o, uint64_t units, double until)
{
    uint64_t next = 0, done = 0, running = 0;
    double last_progress = pp_now();

    for (;;) {
        while (running < o->jobs && next < units &&
               (until <= 0 || pp_now() < until)) {
            pid_t pid = fork();
            if (pid < 0) {
                pp_die(PROG, "fork: %s", strerror(errno));
            }
            if (pid == 0) {
                run_unit(o, next);
            }
            next++;
            running++;
        }
        if (running == 0) {
            return done;
        }
        int status;
        pid_t pid = wait(&status);
        if (pid < 0) {
            if (errno == EINTR) {
                continue;
            }
            pp_die(PROG, "wait: %s", strerror(errno));
        }
        running--;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            pp_die(PROG, "a unit failed (status %d)", status);
        }
        done++;
        double now = pp_now();
        if (until <= 0 && now - last_progress >= 1.0) {
            pp_report(PROG, "progress", "done=%llu of=%llu",
                      (unsigned long long)done, (unsigned long long)units);
            last_progress = now;
        }
    }
}

/* The "link": every object read back, combined in unit order. */
static uint64_t link_objects(const Opts *o)
{
    size_t len = o->obj_kib * 1024 + 8;
    uint64_t *buf = malloc(len);
    uint64_t sum = 0;

    if (!buf) {
        pp_die(PROG, "out of memory");
    }
    for (uint64_t u = 0; u < o->units; u++) {
        int fd = open(obj_path(u), O_RDONLY);
        if (fd < 0 || read(fd, buf, len) != (ssize_t)len) {
            pp_die(PROG, "cannot read %s", obj_path(u));
        }
        close(fd);
        unlink(obj_path(u));
        for (size_t i = 0; i < len / sizeof(uint64_t); i++) {
            sum = mix(sum ^ buf[i]);
        }
    }
    free(buf);
    return sum;
}

static void sleep_until(double t)
{
    for (double now = pp_now(); now < t; now = pp_now()) {
        double s = t - now;
        struct timespec ts = { (time_t)s, (long)((s - (time_t)s) * 1e9) };
        nanosleep(&ts, NULL);
    }
}

int main(int argc, char **argv)
{
    Opts o = { .jobs = 2, .unit_mib = 32, .unit_work = 4, .obj_kib = 64,
               .seed = 1 };
    const char *v;

    for (int i = 1; i < argc; i++) {
        if (pp_opt(argv[i], "units", &v)) {
            o.units = pp_parse_u64(PROG, "units", v);
        } else if (pp_opt(argv[i], "jobs", &v)) {
            o.jobs = pp_parse_u64(PROG, "jobs", v);
        } else if (pp_opt(argv[i], "unit-mib", &v)) {
            o.unit_mib = pp_parse_u64(PROG, "unit-mib", v);
        } else if (pp_opt(argv[i], "unit-work", &v)) {
            o.unit_work = pp_parse_u64(PROG, "unit-work", v);
        } else if (pp_opt(argv[i], "obj-kib", &v)) {
            o.obj_kib = pp_parse_u64(PROG, "obj-kib", v);
        } else if (pp_opt(argv[i], "seed", &v)) {
            o.seed = pp_parse_u64(PROG, "seed", v);
        } else if (pp_opt(argv[i], "start-at", &v)) {
            o.start_at = (double)pp_parse_u64(PROG, "start-at", v);
        } else if (pp_opt(argv[i], "calibrate", &v)) {
            o.calibrate = (double)pp_parse_u64(PROG, "calibrate", v);
        } else {
            pp_die(PROG, "unknown option '%s' (usage: fixedwork --units=U "
                   "[--jobs=J] [--unit-mib=M] [--unit-work=W] [--obj-kib=K] "
                   "[--seed=S] [--start-at=UPTIME] | --calibrate=SECONDS)",
                   argv[i]);
        }
    }
    if (!o.units == !o.calibrate) {
        pp_die(PROG, "say --units=U (the work) or --calibrate=SECONDS");
    }
    if (o.jobs < 1 || o.jobs > MAX_JOBS || o.unit_mib < 1 ||
        o.unit_mib > 4096 || o.obj_kib < 1 || o.obj_kib > 65536) {
        pp_die(PROG, "need 1 <= --jobs <= %d, 1 <= --unit-mib <= 4096 and "
               "1 <= --obj-kib <= 65536", MAX_JOBS);
    }
    if (mkdir(OBJ_DIR, 0755) < 0 && errno != EEXIST) {
        pp_die(PROG, "cannot create " OBJ_DIR ": %s", strerror(errno));
    }
    pp_report(PROG, "ready", "units=%llu jobs=%llu unit_mib=%llu "
              "unit_work=%llu", (unsigned long long)o.units,
              (unsigned long long)o.jobs, (unsigned long long)o.unit_mib,
              (unsigned long long)o.unit_work);
    sleep_until(o.start_at);
    double t0 = pp_now();
    if (o.calibrate) {
        uint64_t n = run_units(&o, UINT64_MAX, t0 + o.calibrate);
        double el = pp_now() - t0;
        pp_report(PROG, "calib", "units=%llu elapsed=%.3f units_per_s=%.4f",
                  (unsigned long long)n, el, n / el);
        for (uint64_t u = 0; u < n; u++) {
            unlink(obj_path(u));
        }
        return 0;
    }
    pp_report(PROG, "start", "units=%llu", (unsigned long long)o.units);
    run_units(&o, o.units, 0);
    uint64_t sum = link_objects(&o);
    pp_report(PROG, "done", "units=%llu elapsed=%.3f checksum=%016llx",
              (unsigned long long)o.units, pp_now() - t0,
              (unsigned long long)sum);
    return 0;
}
