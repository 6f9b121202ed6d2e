#!/bin/bash
# Post-copy after a pre-copy phase: pre-copy runs for 1 s at a bandwidth
# too low to finish (16 MiB/s for 128 MiB), then switches to post-copy.
# Both phases carried pages and every page verifies on the destination.
. "$(dirname "$0")/lib.sh"
out=$(ppmig --workload "memverify --mib=128 --pass-ms=2000" \
      --mode postcopy-after=1 --max-bandwidth 16 \
      --verify --src-cpus 0 --dst-cpus 1 --run-dir "$PP_BUILD/tests/run/12") ||
    fail "ppmig exited with status $?"
echo "$out"
expect_json "$out" status '"completed"'
expect_json "$out" postcopy-switched true
expect_json "$out" guest-running true
expect_json "$out" verify-pages 32768
expect_json "$out" verify-bad-pages 0
pre=$(json_int "$out" precopy-bytes)
post=$(json_int "$out" postcopy-bytes)
[ "${pre:-0}" -gt $((4 * 1024 * 1024)) ] || fail "pre-copy phase sent only ${pre:-?} bytes"
[ "${post:-0}" -gt $((4 * 1024 * 1024)) ] || fail "post-copy phase sent only ${post:-?} bytes"
