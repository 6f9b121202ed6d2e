/*
 * Shared helpers of the postpack guest workloads.
 *
 * Every workload reports on stdout (the guest's serial console) in one
 * machine-readable format, one record per line:
 *
 *     PP <program> <event> t=<guest monotonic seconds> key=value ...
 *
 * Keys and values contain no spaces.  Host tools grep for "PP " lines and
 * ignore everything else (kernel messages, echo).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef PPGUEST_H
#define PPGUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Guest CLOCK_MONOTONIC in seconds. */
double pp_now(void);

/* Print one record: "PP <prog> <event> t=<now> " + fmt + "\n", atomically. */
void pp_report(const char *prog, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Print "PP <prog> error msg=..." to stdout and the message to stderr, exit 2. */
void pp_die(const char *prog, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

/*
 * Parse "--name=value" options.  Returns true and sets *value when argv[i]
 * is --name=..., false otherwise.
 */
bool pp_opt(const char *arg, const char *name, const char **value);

/* Parse an unsigned decimal; dies with a clear message if malformed. */
uint64_t pp_parse_u64(const char *prog, const char *name, const char *s);

/* Anonymous, populated, private memory of @bytes, or die. */
void *pp_alloc(const char *prog, size_t bytes);

/* Fast deterministic PRNG (xorshift64*). */
static inline uint64_t pp_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/*
 * Console commands.  Workloads poll stdin between batches of work; a line
 * is returned (without newline, NUL-terminated) when complete.  Returns
 * NULL when no full line is available.  Never blocks.
 */
const char *pp_poll_command(void);

/* Guest-physical address of the page holding @addr, or 0 if unknown. */
uint64_t pp_gpa(const void *addr);

#define PP_PAGE 4096UL
#define PP_MIB (1024UL * 1024UL)

#endif
