#!/usr/bin/env python3
"""fault-trace.py: where a post-copy fault's time goes.

Usage: tools/fault-trace.py RUN_DIR

RUN_DIR is a ppmig run directory of a post-copy migration run with

    --trace postcopy_ram_fault_thread_request --trace postcopy_page_req_del
    --trace migrate_handle_rp_req_pages --trace get_queued_page

(ppmig --trace writes each QEMU's events with timestamps to
RUN_DIR/src/trace.log and RUN_DIR/dst/trace.log; both QEMUs run on this
host, so their clocks agree).  For every page the destination requested
it follows the request through four points:

  request   the destination's fault thread sends it (dst)
  received  the source's return-path thread reads it (src)
  dequeued  the source's migration thread takes it to send (src)
  placed    the destination has placed the page and woken the vCPU (dst)

and prints percentiles of each step, then the faults per 50 ms after the
first one.  Tracing costs time on the fault path itself: compare the
total with the fault latency of a run without --trace.

SPDX-License-Identifier: GPL-2.0-or-later
"""
import os
import re
import sys

LINE = re.compile(r'^\d+@(\d+\.\d+):(\w+) (.*)$')


def events(path):
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            for line in f:
                m = LINE.match(line)
                if m:
                    yield float(m.group(1)), m.group(2), m.group(3)
    except OSError as e:
        sys.exit('fault-trace: cannot read %s: %s' % (path, e.strerror))


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p))]


def main():
    if len(sys.argv) != 2 or sys.argv[1] in ('-h', '--help'):
        sys.stderr.write(__doc__)
        sys.exit(2)
    run = sys.argv[1]
    request, placed, hva_to_page = {}, {}, {}
    for t, ev, args in events(os.path.join(run, 'dst', 'trace.log')):
        if ev == 'postcopy_ram_fault_thread_request':
            m = re.search(r'HVA=0x([0-9a-f]+) rb=(\S+) offset=0x([0-9a-f]+)',
                          args)
            if m:
                page = (m.group(2), int(m.group(3), 16) & ~0xfff)
                request.setdefault(page, t)
                hva_to_page[int(m.group(1), 16) & ~0xfff] = page
        elif ev == 'postcopy_page_req_del':
            m = re.search(r'req 0x([0-9a-f]+)', args)
            page = m and hva_to_page.get(int(m.group(1), 16))
            if page:
                placed.setdefault(page, t)
    received, dequeued = {}, {}
    block = None
    for t, ev, args in events(os.path.join(run, 'src', 'trace.log')):
        if ev == 'migrate_handle_rp_req_pages':
            m = re.search(r'in (\S+) at 0x([0-9a-f]+)', args)
            if m:
                # "(null)": the same block as the previous request
                block = block if m.group(1) == '(null)' else m.group(1)
                received.setdefault((block, int(m.group(2), 16)), t)
        elif ev == 'get_queued_page':
            m = re.search(r'^(\S+)/0x([0-9a-f]+)', args)
            if m:
                dequeued.setdefault((m.group(1), int(m.group(2), 16)), t)
    if not request:
        sys.exit('fault-trace: no postcopy_ram_fault_thread_request events in '
                 '%s/dst/trace.log (run ppmig with the --trace options in '
                 'this script\'s help)' % run)

    steps = {'request -> received': [], 'received -> dequeued': [],
             'dequeued -> placed': [], 'request -> placed': []}
    for page, t0 in request.items():
        if page in placed:
            steps['request -> placed'].append(placed[page] - t0)
        if page in received and page in dequeued and page in placed:
            steps['request -> received'].append(received[page] - t0)
            steps['received -> dequeued'].append(dequeued[page] -
                                                 received[page])
            steps['dequeued -> placed'].append(placed[page] - dequeued[page])
    print('%d pages requested, %d placed, %d followed through all four '
          'points' % (len(request), len(steps['request -> placed']),
                      len(steps['request -> received'])))
    print('%-22s %8s %8s %8s %8s' % ('step (us)', 'p50', 'p90', 'p99', 'mean'))
    for name, v in steps.items():
        if v:
            print('%-22s %8.0f %8.0f %8.0f %8.0f' % (
                name, pct(v, .5) * 1e6, pct(v, .9) * 1e6, pct(v, .99) * 1e6,
                sum(v) / len(v) * 1e6))
    t0 = min(request.values())
    buckets = {}
    for t in request.values():
        b = int((t - t0) / 0.05)
        buckets[b] = buckets.get(b, 0) + 1
    first = [buckets.get(b, 0) for b in range(20)]
    print('faults per 50 ms in the first second: ' +
          ' '.join(str(n) for n in first) +
          '; %d later' % (len(request) - sum(first)))


if __name__ == '__main__':
    main()
