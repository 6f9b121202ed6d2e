/*
 * memverify: prove that guest memory survives migration intact.
 *
 * Fills M MiB with a pattern derived from (page index, generation, word)
 * and then rewrites it forever, one generation per pass.  Before a page is
 * rewritten its previous generation is checked, so every page is verified
 * on every pass; a console command "verify" checks every page at once.
 * Pages are never all-zero, so migration has to carry every one of them.
 *
 * --pass-ms spreads a pass over at least that long (sleeping between
 * batches), which bounds the dirty rate at M MiB per pass: pre-copy cannot
 * converge against an unthrottled writer.
 *
 * Usage: memverify --mib=M [--batch=PAGES] [--pass-ms=MS]
 * Console commands (one per line on stdin):
 *   verify        check every page now, report "check"
 *   where P       report the guest-physical address of page P
 *   status        report progress
 * Records:
 *   PP memverify ready   pages=N gen=1
 *   PP memverify pass    gen=G pages=N ms=MS bad_total=B
 *   PP memverify bad     page=P gen=G word=W expect=X got=Y   (first 16)
 *   PP memverify check   gen=G pages=N bad=B first_bad=P|-1 bad_total=B
 *   PP memverify where   page=P gpa=0x...
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "ppguest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROG "memverify"
#define WORDS (PP_PAGE / sizeof(uint64_t))

static uint64_t *mem;
static uint64_t npages;
static uint64_t gen;      /* generation being written by the current pass */
static uint64_t cursor;   /* pages below hold @gen, the rest @gen - 1 */
static uint64_t bad_total;
static unsigned bad_reported;

static inline uint64_t page_seed(uint64_t page, uint64_t g)
{
    return (page * 0x9E3779B97F4A7C15ULL) ^ (g * 0xC2B2AE3D27D4EB4FULL) ^
           0x5bd1e9955bd1e995ULL;
}

static void fill_page(uint64_t page, uint64_t g)
{
    uint64_t *w = mem + page * WORDS;
    uint64_t x = page_seed(page, g);

    for (size_t i = 0; i < WORDS; i++) {
        w[i] = x | 1;
        x += 0x165667B19E3779F9ULL;
    }
}

/* Returns true when @page holds generation @g. */
static bool check_page(uint64_t page, uint64_t g, bool report)
{
    const uint64_t *w = mem + page * WORDS;
    uint64_t x = page_seed(page, g);

    for (size_t i = 0; i < WORDS; i++) {
        if (w[i] != (x | 1)) {
            if (report && bad_reported < 16) {
                bad_reported++;
                pp_report(PROG, "bad",
                          "page=%llu gen=%llu word=%zu expect=0x%llx "
                          "got=0x%llx",
                          (unsigned long long)page, (unsigned long long)g,
                          i, (unsigned long long)(x | 1),
                          (unsigned long long)w[i]);
            }
            return false;
        }
        x += 0x165667B19E3779F9ULL;
    }
    return true;
}

static uint64_t expected_gen(uint64_t page)
{
    return page < cursor ? gen : gen - 1;
}

static void verify_all(void)
{
    uint64_t bad = 0;
    int64_t first = -1;

    for (uint64_t p = 0; p < npages; p++) {
        if (!check_page(p, expected_gen(p), true)) {
            if (first < 0) {
                first = (int64_t)p;
            }
            bad++;
        }
    }
    bad_total += bad;
    pp_report(PROG, "check",
              "gen=%llu pages=%llu bad=%llu first_bad=%lld bad_total=%llu",
              (unsigned long long)gen, (unsigned long long)npages,
              (unsigned long long)bad, (long long)first,
              (unsigned long long)bad_total);
}

static void handle_command(const char *cmd)
{
    unsigned long long page;

    if (strcmp(cmd, "verify") == 0) {
        verify_all();
    } else if (sscanf(cmd, "where %llu", &page) == 1) {
        if (page >= npages) {
            pp_report(PROG, "where", "page=%llu error=out_of_range", page);
            return;
        }
        pp_report(PROG, "where", "page=%llu gpa=0x%llx", page,
                  (unsigned long long)pp_gpa(mem + page * WORDS));
    } else if (strcmp(cmd, "status") == 0) {
        pp_report(PROG, "status", "gen=%llu cursor=%llu bad_total=%llu",
                  (unsigned long long)gen, (unsigned long long)cursor,
                  (unsigned long long)bad_total);
    } else {
        pp_report(PROG, "unknown", "len=%zu", strlen(cmd));
    }
}

int main(int argc, char **argv)
{
    uint64_t mib = 0, batch = 256, pass_ms = 0;
    const char *v;

    for (int i = 1; i < argc; i++) {
        if (pp_opt(argv[i], "mib", &v)) {
            mib = pp_parse_u64(PROG, "mib", v);
        } else if (pp_opt(argv[i], "pass-ms", &v)) {
            pass_ms = pp_parse_u64(PROG, "pass-ms", v);
        } else if (pp_opt(argv[i], "batch", &v)) {
            batch = pp_parse_u64(PROG, "batch", v);
        } else {
            pp_die(PROG, "unknown option '%s' (usage: memverify --mib=M "
                   "[--batch=PAGES] [--pass-ms=MS])", argv[i]);
        }
    }
    if (mib == 0 || batch == 0) {
        pp_die(PROG, "--mib and --batch must be positive");
    }
    npages = mib * PP_MIB / PP_PAGE;
    mem = pp_alloc(PROG, mib * PP_MIB);

    gen = 1;
    for (cursor = 0; cursor < npages; cursor++) {
        fill_page(cursor, gen);
    }
    pp_report(PROG, "ready", "pages=%llu gen=1 mib=%llu",
              (unsigned long long)npages, (unsigned long long)mib);

    for (;;) {
        double start = pp_now();
        gen++;
        cursor = 0;
        while (cursor < npages) {
            uint64_t end = cursor + batch < npages ? cursor + batch : npages;
            for (; cursor < end; cursor++) {
                if (!check_page(cursor, gen - 1, true)) {
                    bad_total++;
                }
                fill_page(cursor, gen);
            }
            const char *cmd;
            while ((cmd = pp_poll_command())) {
                handle_command(cmd);
            }
            if (pass_ms) {
                double due = start + pass_ms / 1000.0 * cursor / npages;
                double ahead = due - pp_now();
                if (ahead > 0) {
                    struct timespec ts = {
                        .tv_sec = (time_t)ahead,
                        .tv_nsec = (long)((ahead - (time_t)ahead) * 1e9),
                    };
                    nanosleep(&ts, NULL);
                }
            }
        }
        pp_report(PROG, "pass", "gen=%llu pages=%llu ms=%.0f bad_total=%llu",
                  (unsigned long long)gen, (unsigned long long)npages,
                  (pp_now() - start) * 1000, (unsigned long long)bad_total);
    }
}
