/*
 * bankpage: a dynamic page for experiment 5.3's web service, run by
 * busybox httpd as a CGI program (/www/cgi-bin/bank).
 *
 * The paper loads its VMs with SPECweb2005 Banking, whose requests are
 * dynamic pages that cost the server CPU and memory.  A request here
 * costs what such a page does in kind: httpd forks and execs this
 * program, which maps a fresh area of kib KiB, writes every page of it,
 * runs work rounds of a hash over it and answers with about 8 KiB of
 * HTML built from the result (an account summary).
 *
 *   GET /cgi-bin/bank?work=N&kib=M       (defaults: work=4, kib=1024)
 *
 * Also runs from a shell for a quick check: bankpage work=2 kib=64.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "ppguest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define PROG "bankpage"

static uint64_t query_u64(const char *q, const char *key, uint64_t def,
                          uint64_t max)
{
    size_t n = strlen(key);

    for (const char *p = q; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1
                                                        : NULL) {
        if (strncmp(p, key, n) == 0 && p[n] == '=') {
            uint64_t v = strtoull(p + n + 1, NULL, 10);
            return v > max ? max : v;
        }
    }
    return def;
}

int main(int argc, char **argv)
{
    const char *q = getenv("QUERY_STRING");
    char args[256] = "";

    if (!q && argc > 1) {
        /* from a shell: "work=2 kib=64" */
        for (int i = 1; i < argc; i++) {
            strncat(args, argv[i], sizeof(args) - strlen(args) - 2);
            strcat(args, "&");
        }
        q = args;
    }
    uint64_t work = query_u64(q, "work", 4, 1000);
    uint64_t kib = query_u64(q, "kib", 1024, 262144);
    uint64_t words = 1;
    while (words * 2 * sizeof(uint64_t) <= kib * 1024) {
        words *= 2;
    }
    uint64_t *a = mmap(NULL, words * sizeof(uint64_t), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a == MAP_FAILED) {
        printf("Status: 503 Service Unavailable\r\nContent-Type: "
               "text/plain\r\n\r\nno memory\n");
        return 0;
    }
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (uint64_t i = 0; i < words; i++) {
        a[i] = x ^ i;
    }
    for (uint64_t r = 0; r < work; r++) {
        uint64_t mul = (pp_rand(&x) << 2) | 1, add = pp_rand(&x) | 1;
        uint64_t idx = 0;
        for (uint64_t i = 0; i < words; i++) {
            idx = (idx * mul + add) & (words - 1);
            a[idx] = pp_rand(&x) ^ a[idx];
        }
    }
    printf("Content-Type: text/html\r\n\r\n"
           "<!DOCTYPE html>\n<html><head><title>Account summary</title></head>"
           "<body>\n<h1>Account summary</h1>\n<table>\n");
    /* about 8 KiB of rows */
    for (int i = 0; i < 100; i++) {
        uint64_t v = a[(i * 977) & (words - 1)];
        printf("<tr><td>%03d</td><td>check %016llx</td><td>%llu.%02llu</td>"
               "</tr>\n", i, (unsigned long long)v,
               (unsigned long long)(v % 100000),
               (unsigned long long)(v / 7 % 100));
    }
    printf("</table>\n<p>work=%llu kib=%llu</p>\n</body></html>\n",
           (unsigned long long)work, (unsigned long long)kib);
    return 0;
}
