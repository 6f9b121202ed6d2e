#!/bin/bash
# All-zero pages are not sent as data in post-copy: a 1 GiB guest whose
# only non-zero memory is memverify's 64 MiB (plus the kernel's) moves
# with post-copy; QEMU counts the zero pages it skipped, and the bytes on
# the wire stay within 2% (+ 4 MiB of device state and headers) of the
# non-zero pages' size, far below the guest's RAM.
. "$(dirname "$0")/lib.sh"
out=$(ppmig --mem 1024 --workload "memverify --mib=64 --pass-ms=2000" \
      --mode postcopy-instant --verify --run-dir "$PP_BUILD/tests/run/15") ||
    fail "ppmig exited with status $?"
echo "$out"
expect_json "$out" status '"completed"'
expect_json "$out" verify-bad-pages 0
nz=$(json_int "$out" nonzero-pages)
z=$(json_int "$out" zero-pages)
bytes=$(json_int "$out" transferred-bytes)
echo "non-zero pages $nz, zero pages $z, bytes $bytes"
[ "${z:-0}" -gt 150000 ] || fail "only ${z:-?} zero pages detected in a mostly empty 1 GiB guest"
limit=$(( nz * 4096 * 102 / 100 + 4 * 1024 * 1024 ))
[ "$bytes" -le "$limit" ] || fail "$bytes bytes sent for $nz non-zero pages (limit $limit)"
[ "$bytes" -lt $((512 * 1024 * 1024)) ] || fail "$bytes bytes sent: zero pages went as data"
